"""Build engine/landmarks/data/face_model.npz: mesh topology, canonical face, stable points.

Reproduce with:  python -m engine.tools.build_face_model --faces ../shared/data/faces

The canonical face is the generalized-Procrustes mean of MediaPipe landmarks over talking-head
clips of many people (shipped as 478 averaged points, no pixels). Stable points are the mesh
vertices that move least with expression; they anchor the rigid head-pose fit.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

from engine.landmarks.mediapipe_tracker import FaceTracker
from engine.motion.procrustes import fit_similarity

log = logging.getLogger("build_face_model")


def _cycle(edges: frozenset[tuple[int, int]]) -> list[list[int]]:
    """Split an undirected edge set into its closed loops, each as an ordered vertex list."""
    adj: dict[int, list[int]] = {}
    for a, b in edges:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    seen: set[int] = set()
    loops = []
    for start in sorted(adj):
        if start in seen:
            continue
        loop, prev, cur = [start], -1, start
        seen.add(start)
        while True:
            nxt = [n for n in adj[cur] if n != prev and (n not in seen or n == start)]
            if not nxt or nxt[0] == start:
                break
            prev, cur = cur, nxt[0]
            loop.append(cur)
            seen.add(cur)
        loops.append(loop)
    return loops


def _triangles(edges: frozenset[tuple[int, int]]) -> np.ndarray:
    adj: dict[int, set[int]] = {}
    for a, b in edges:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    tris = sorted({tuple(sorted((a, b, c))) for a, b in edges for c in adj[a] & adj[b]})
    # A 3-cycle of mesh edges that is not a face has every edge shared by 3 triangles: drop it.
    uses: dict[tuple[int, int], int] = {}
    for a, b, c in tris:
        for e in ((a, b), (b, c), (a, c)):
            uses[e] = uses.get(e, 0) + 1
    faces = [t for t in tris if min(uses[(t[0], t[1])], uses[(t[1], t[2])], uses[(t[0], t[2])]) < 3]
    return np.array(faces, dtype=np.int32)


def _area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def topology() -> dict[str, np.ndarray]:
    import mediapipe as mp

    fm = mp.solutions.face_mesh
    lips = _cycle(fm.FACEMESH_LIPS)
    assert len(lips) == 2, lips
    return {
        "triangles": _triangles(fm.FACEMESH_TESSELATION),
        "lips_a": np.array(lips[0], np.int32),
        "lips_b": np.array(lips[1], np.int32),
        "eye_a": np.array(_cycle(fm.FACEMESH_LEFT_EYE)[0], np.int32),
        "eye_b": np.array(_cycle(fm.FACEMESH_RIGHT_EYE)[0], np.int32),
        "oval": np.array(_cycle(fm.FACEMESH_FACE_OVAL)[0], np.int32),
    }


def collect(faces: Path, stride: int, per_clip: int) -> list[np.ndarray]:
    """Per clip, an (F, 478, 3) array of landmarks sampled every `stride` frames."""
    clips = sorted((faces / "videos").glob("*/*.mp4"))
    out = []
    for clip in clips:
        shapes: list[np.ndarray] = []
        cap = cv2.VideoCapture(str(clip))
        with FaceTracker() as tracker:
            index = 0
            while len(shapes) < per_clip:
                ok, bgr = cap.read()
                if not ok:
                    break
                lm = tracker.track(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                if lm is not None and index % stride == 0:
                    shapes.append(lm.points)
                index += 1
        cap.release()
        if shapes:
            out.append(np.stack(shapes).astype(np.float64))
            log.info("%s: %d frames", clip.name, len(shapes))
    return out


def procrustes_mean(shapes: np.ndarray, idx: np.ndarray, iters: int = 5) -> np.ndarray:
    """Generalized Procrustes over points `idx`; returns the mean of all points, aligned."""
    mean = shapes[0]
    for _ in range(iters):
        aligned = []
        for s in shapes:
            scale, rot, t = fit_similarity(mean[idx], s[idx])  # s ~ scale * rot @ mean + t
            aligned.append(((s - t) @ rot) / scale)
        mean = np.mean(aligned, axis=0)
    return mean


def orient(mean: np.ndarray, topo: dict[str, np.ndarray], stable: np.ndarray) -> np.ndarray:
    """Centre on the stable points, x from one eye to the other, y down, unit eye distance."""
    eye_a = mean[topo["eye_a"]].mean(axis=0)
    eye_b = mean[topo["eye_b"]].mean(axis=0)
    if eye_a[0] > eye_b[0]:
        eye_a, eye_b = eye_b, eye_a
    x = eye_b - eye_a
    x /= np.linalg.norm(x)
    down = mean[topo["lips_a"]].mean(axis=0) - (eye_a + eye_b) / 2
    y = down - x * np.dot(down, x)
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    rot = np.stack([x, y, z])  # rows: new axes
    centred = mean - mean[stable].mean(axis=0)
    out = centred @ rot.T
    return out / np.linalg.norm(eye_b - eye_a)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--faces", type=Path, default=Path("../shared/data/faces"))
    ap.add_argument("--out", type=Path, default=Path("engine/landmarks/data/face_model.npz"))
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--per-clip", type=int, default=60)
    ap.add_argument("--stable-fraction", type=float, default=0.35)
    args = ap.parse_args()

    topo = topology()
    clips = collect(args.faces, args.stride, args.per_clip)
    everything = np.concatenate(clips)
    mesh_idx = np.arange(468)
    mean = procrustes_mean(everything, mesh_idx)
    # Expression variance: per clip, spread of each aligned vertex around that clip's mean.
    spread = np.zeros(478)
    for shapes in clips:
        aligned = []
        for s in shapes:
            scale, rot, t = fit_similarity(mean[mesh_idx], s[mesh_idx])
            aligned.append(((s - t) @ rot) / scale)
        a = np.array(aligned)
        spread += np.linalg.norm(a - a.mean(axis=0), axis=2).mean(axis=0)
    spread[468:] = np.inf  # the irises move with gaze: never rigid anchors
    stable = np.sort(np.argsort(spread)[: int(args.stable_fraction * 468)]).astype(np.int32)
    mean = procrustes_mean(everything, stable)
    canonical = orient(mean, topo, stable).astype(np.float32)
    # Lip loops: inner is the one with the smaller area in the canonical frontal view.
    inner, outer = sorted(
        (topo["lips_a"], topo["lips_b"]), key=lambda loop: abs(_area(canonical[loop, :2]))
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        canonical=canonical,
        stable=stable,
        triangles=topo["triangles"],
        lips_inner=inner,
        lips_outer=outer,
        eye_a=topo["eye_a"],
        eye_b=topo["eye_b"],
        oval=topo["oval"],
        source_frames=np.int32(len(everything)),
        source_clips=np.int32(len(clips)),
    )
    log.info("wrote %s from %d frames of %d clips", args.out, len(everything), len(clips))


if __name__ == "__main__":
    main()
