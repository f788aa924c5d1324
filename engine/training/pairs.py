"""(source, driving) pairs from cached clips, as tensors the networks take.

Both frames of a pair come from the same clip, so the driving frame is the ground truth of the
reenactment. Where the clip has the app's recorded targets (engine.training.drive), the source
is one of the recorded frames with its portrait landmarks, the target is what the app computes,
and the geometric flow is the engine's own between them: the networks learn exactly the
residual the app will ask of them. Clips without them pair tracked landmarks directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from engine.geometry.deform import mesh_backward_map
from engine.geometry.drawing import landmark_maps
from engine.geometry.mesh import WarpMesh, mesh_source, warp_mesh
from engine.geometry.mouth import lip_color, mouth_box, mouth_fill_in_box
from engine.landmarks.topology import FaceTopology, load_topology
from engine.training.clips import ClipData
from engine.training.drive import Drive

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Batch:
    """B pairs at crop side S. Images float32 in [0, 1].

    source, driving: (B, 3, S, S). grid: (B, S, S, 2) geometric backward flow in [-1, 1].
    smap, tmap: (B, 5, S, S) landmark maps of source and driving. ident: (B, D) identity
    embedding of the source's person. target_points: (B, 478, 3) driving landmarks (crop px).
    source_hr, driving_hr: (B, 3, 2S, 2S) when every clip in the batch has 2S crops, else None.
    source_points: (B, 478, 3) the source's landmarks as a portrait (crop px).
    mouth: (B, 4, S, S) the app's painted mouth interior over the geometric warp (`mouth_layer`).
    """

    source: torch.Tensor
    driving: torch.Tensor
    grid: torch.Tensor
    smap: torch.Tensor
    tmap: torch.Tensor
    ident: torch.Tensor
    target_points: torch.Tensor
    source_hr: torch.Tensor | None = None
    driving_hr: torch.Tensor | None = None
    source_points: torch.Tensor | None = None
    mouth: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return Batch(
            **{k: move(getattr(self, k)) for k in self.__dataclass_fields__}  # type: ignore[arg-type]
        )


def _recorded(clip: ClipData, s: int) -> tuple[Drive, int] | None:
    """The clip's recorded run with frame s as the source, and its position, if recorded."""
    k = clip.drive.index(s) if clip.drive is not None else None
    return None if k is None or clip.drive is None else (clip.drive, k)


def pixel_to_unit(map_xy: F32, size: int) -> F32:
    """Pixel-centre coordinates in a square of side `size` -> grid_sample's [-1, 1]."""
    return ((map_xy + 0.5) * (2.0 / size) - 1.0).astype(np.float32)


def image_tensor(images: npt.NDArray[np.uint8]) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)


def maps_tensor(maps: list[F32]) -> torch.Tensor:
    """(B, S, S, C) float32 maps -> (B, C, S, S)."""
    return torch.from_numpy(np.stack(maps)).permute(0, 3, 1, 2).contiguous()


def mouth_layer(
    crop: npt.NDArray[np.uint8],
    grid: F32,
    source_points: npt.NDArray[np.floating],
    target_points: npt.NDArray[np.floating],
    colour: npt.NDArray[np.float64],
    topo: FaceTopology,
) -> F32:
    """(S, S, 4) the mouth interior the app paints (engine.geometry.mouth) when `crop` (S, S,
    3), the source, is warped by `grid` (S, S, 2, in [-1, 1]) onto target_points (478, 3; crop
    px): RGB premultiplied by alpha in [0, 1], then alpha (see MouthFill.layer). colour: the
    source's lip colour (lip_color)."""
    size = crop.shape[0]
    loop = topo.lips_inner
    target = np.asarray(target_points, np.float64)[loop, :2]
    box = mouth_box(target, (size, size))
    fill = None
    if box is not None:  # only the mouth's box of the warp is needed (mouth_fill_in_box)
        x0, y0, x1, y1 = box
        px = (grid[y0:y1, x0:x1] + 1.0) * (size / 2.0) - 0.5
        warped = cv2.remap(
            crop, px[..., 0], px[..., 1], cv2.INTER_LINEAR, None, cv2.BORDER_REPLICATE
        )
        src = np.asarray(source_points, np.float64)[loop, :2]
        fill = mouth_fill_in_box(warped, box, src, target, colour)
    return np.zeros((size, size, 4), np.float32) if fill is None else fill.layer((size, size))


class PairSampler:
    """Draws random same-clip pairs. idents: clip name -> (D,) identity embedding."""

    def __init__(
        self,
        clips: list[ClipData],
        idents: dict[str, F32],
        seed: int = 0,
        need_hr: bool = False,
        source: int | None = None,
    ) -> None:
        """source: always this frame as the pair's source (one clip only), else random."""
        self.clips = [c for c in clips if self._usable(c)]
        if need_hr:
            self.clips = [c for c in self.clips if c.crops_hr is not None]
        if not self.clips:
            raise ValueError("no usable clips (each needs 2+ tracked frames)")
        if source is not None and (len(self.clips) != 1 or not self.clips[0].valid[source]):
            raise ValueError("a fixed source frame needs one clip in which it is tracked")
        self.source = source
        self.idents = idents
        self.rng = np.random.default_rng(seed)
        self.topo: FaceTopology = load_topology()
        self.mesh: WarpMesh = warp_mesh()
        self._sources: dict[tuple[str, int], tuple[npt.NDArray[np.float64], ...]] = {}
        self._lips: dict[tuple[str, int], npt.NDArray[np.float64]] = {}

    @staticmethod
    def _usable(clip: ClipData) -> bool:
        return len(clip.valid_indices) >= 2

    def _source_points(self, clip: ClipData, s: int) -> npt.NDArray[np.float32]:
        """(478, 3) landmarks of frame s as the portrait: recorded, else tracked."""
        rec = _recorded(clip, s)
        return rec[0].portrait[rec[1]] if rec is not None else clip.points[s]

    def _target_points(self, clip: ClipData, s: int, d: int) -> npt.NDArray[np.float32]:
        """(478, 3) target when frame d drives frame s: the app's, else d's tracked landmarks."""
        rec = _recorded(clip, s)
        return rec[0].targets[rec[1], d] if rec is not None else clip.points[d]

    def _source(self, clip: ClipData, i: int) -> tuple[npt.NDArray[np.float64], ...]:
        key = (clip.name, i)
        if key not in self._sources:
            size = clip.crops.shape[1]
            pts = self._source_points(clip, i)[:, :2].astype(np.float64)
            self._sources[key] = mesh_source(pts, size, self.topo, clip.person)
        return self._sources[key]

    def pair_arrays(self, clip: ClipData, s: int, d: int) -> tuple[F32, F32, F32]:
        """(grid (S, S, 2) in [-1, 1], smap, tmap (S, S, 5)) for frames s -> d of a clip."""
        size = clip.crops.shape[1]
        vertices, follow = self._source(clip, s)
        target = self._target_points(clip, s, d)
        gmap = mesh_backward_map(vertices, follow, target, self.mesh, self.topo, size)
        smap = landmark_maps(self._source_points(clip, s), size)
        tmap = landmark_maps(target, size)
        return pixel_to_unit(gmap, size), smap, tmap

    def mouth(self, clip: ClipData, s: int, d: int, grid: F32) -> F32:
        """(S, S, 4) the painted mouth of pair s -> d (mouth_layer), given its grid."""
        key = (clip.name, s)
        points = self._source_points(clip, s)
        if key not in self._lips:
            self._lips[key] = lip_color(clip.crops[s], points.astype(np.float64), self.topo)
        target = self._target_points(clip, s, d)
        return mouth_layer(clip.crops[s], grid, points, target, self._lips[key], self.topo)

    def _drivers(self, clip: ClipData, s: int) -> npt.NDArray[np.int64]:
        """Frames that can drive source s: tracked (and tracked by the recorded run)."""
        ok = clip.valid.copy()
        rec = _recorded(clip, s)
        if rec is not None:
            ok &= rec[0].valid[rec[1]]
        ok[s] = False
        return np.flatnonzero(ok)

    def pick(self) -> tuple[ClipData, int, int]:
        clip = self.clips[self.rng.integers(len(self.clips))]
        if self.source is not None:  # one fixed source frame, as the personalized avatar uses
            s = self.source
        elif clip.drive is not None and len(clip.drive.sources):
            s = int(self.rng.choice(clip.drive.sources))
        else:
            s = int(self.rng.choice(clip.valid_indices))
        return clip, s, int(self.rng.choice(self._drivers(clip, s)))

    def sample(self, batch: int) -> Batch:
        picks = [self.pick() for _ in range(batch)]
        return self.collate(picks)

    def _idents(self, picks: list[tuple[ClipData, int, int]]) -> torch.Tensor:
        """(B, D) identity embeddings of the picks' clips."""
        d_ident = len(next(iter(self.idents.values()))) if self.idents else 128
        rows = [self.idents[c.name] for c, _, _ in picks]
        return torch.from_numpy(np.stack(rows).reshape(-1, d_ident)).float()

    def _portrait_points(self, picks: list[tuple[ClipData, int, int]]) -> torch.Tensor:
        """(B, 478, 3) each pick's source landmarks as a portrait (crop px)."""
        rows = [self._source_points(c, s) for c, s, _ in picks]
        return torch.from_numpy(np.stack(rows).reshape(-1, 478, 3))

    def collate(self, picks: list[tuple[ClipData, int, int]]) -> Batch:
        grids, smaps, tmaps, mouths = [], [], [], []
        for clip, s, d in picks:
            g, sm, tm = self.pair_arrays(clip, s, d)
            grids.append(g)
            smaps.append(sm)
            tmaps.append(tm)
            mouths.append(self.mouth(clip, s, d, g))
        has_hr = all(c.crops_hr is not None for c, _, _ in picks) and bool(picks)
        size = self.clips[0].crops.shape[1]

        def hr(which: int) -> torch.Tensor | None:
            if not has_hr:
                return None
            return image_tensor(np.stack([c.crops_hr[p[which]] for c, *p in picks]))  # type: ignore[index]

        return Batch(
            source=image_tensor(
                np.stack([c.crops[s] for c, s, _ in picks]).reshape(-1, size, size, 3)
            ),
            driving=image_tensor(
                np.stack([c.crops[d] for c, _, d in picks]).reshape(-1, size, size, 3)
            ),
            grid=torch.from_numpy(np.stack(grids).reshape(-1, size, size, 2)),
            smap=maps_tensor(smaps) if picks else torch.zeros(0, 5, size, size),
            tmap=maps_tensor(tmaps) if picks else torch.zeros(0, 5, size, size),
            ident=self._idents(picks),
            target_points=torch.from_numpy(
                np.stack([c.points[d] for c, _, d in picks]).reshape(-1, 478, 3)
            ),
            source_hr=hr(0),
            driving_hr=hr(1),
            source_points=self._portrait_points(picks),
            mouth=maps_tensor(mouths) if picks else torch.zeros(0, 4, size, size),
        )


@dataclass(frozen=True)
class CrossBatch:
    """B cross-identity pairs (engine.training.cross): a portrait and the app's target when a
    training clip drives it. No ground truth. Shapes as in Batch: source (B, 3, S, S), grid
    (B, S, S, 2), smap and tmap (B, 5, S, S), ident (B, D), source_points and target_points
    (B, 478, 3) in crop pixels, mouth (B, 4, S, S) as in Batch."""

    source: torch.Tensor
    grid: torch.Tensor
    smap: torch.Tensor
    tmap: torch.Tensor
    ident: torch.Tensor
    source_points: torch.Tensor
    target_points: torch.Tensor
    mouth: torch.Tensor

    def to(self, device: torch.device | str) -> CrossBatch:
        return CrossBatch(**{k: getattr(self, k).to(device) for k in self.__dataclass_fields__})


class CrossSampler(PairSampler):
    """Draws (portrait, target) pairs from one-frame cross clips: frame 0 is the source and
    any tracked frame of its recorded driver gives the target."""

    @staticmethod
    def _usable(clip: ClipData) -> bool:
        return clip.drive is not None and clip.drive.index(0) is not None and clip.valid[0]

    def _drivers(self, clip: ClipData, s: int) -> npt.NDArray[np.int64]:
        k = clip.drive.index(s) if clip.drive is not None else None
        assert clip.drive is not None and k is not None
        return np.flatnonzero(clip.drive.valid[k])

    def pick(self) -> tuple[ClipData, int, int]:
        clip = self.clips[self.rng.integers(len(self.clips))]
        return clip, 0, int(self.rng.choice(self._drivers(clip, 0)))

    def sample_cross(self, batch: int) -> CrossBatch:
        picks = [self.pick() for _ in range(batch)]
        arrays = [self.pair_arrays(c, s, d) for c, s, d in picks]
        return CrossBatch(
            source=image_tensor(np.stack([c.crops[s] for c, s, _ in picks])),
            grid=torch.from_numpy(np.stack([a[0] for a in arrays])),
            smap=maps_tensor([a[1] for a in arrays]),
            tmap=maps_tensor([a[2] for a in arrays]),
            ident=self._idents(picks),
            source_points=self._portrait_points(picks),
            target_points=torch.from_numpy(
                np.stack([self._target_points(c, s, d) for c, s, d in picks])
                .reshape(-1, 478, 3)
                .astype(np.float32)
            ),
            mouth=maps_tensor(
                [self.mouth(c, s, d, a[0]) for (c, s, d), a in zip(picks, arrays, strict=True)]
            ),
        )


class PairStream(IterableDataset):
    """Endless batches from a PairSampler per DataLoader worker (each worker its own seed), so
    that the CPU work of drawing pairs (mesh rasterization, landmark drawing) runs beside the
    GPU's training step instead of before it."""

    def __init__(
        self, clips: list[ClipData], idents: dict[str, F32], seed: int, batch: int
    ) -> None:
        super().__init__()
        self.clips, self.idents, self.seed, self.batch = clips, idents, seed, batch

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        sampler = PairSampler(self.clips, self.idents, seed=self.seed + 7919 * (worker + 1))
        while True:
            yield sampler.sample(self.batch)


def batch_stream(
    clips: list[ClipData], idents: dict[str, F32], seed: int, batch: int, workers: int
) -> Iterator[Batch]:
    """Batches drawn in `workers` background processes (workers >= 1)."""
    loader = DataLoader(
        PairStream(clips, idents, seed, batch),
        batch_size=None,  # the stream yields whole batches
        num_workers=workers,
        prefetch_factor=4,
        persistent_workers=True,
    )
    return iter(loader)
