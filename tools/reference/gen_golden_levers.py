"""Golden data for the accuracy levers of issue 18 (crates/facegate-vision/tests/golden/levers.json).

For the largest face of each golden image (tools/reference/gen_golden.py's PIPELINE_IMAGES; tight
crops detected after the 50% padding retry), it records:
  * mirror: the embedding of the mirrored aligned crop alone; flip: the flip-averaged embedding: the 112x112 aligned crop and its mirror image
    (cv2.flip(crop, 1): column x -> 111 - x) embedded, the two unit vectors summed, re-normalised;
  * landmark alignment: the five points read off the 106 landmarks (eye centre = mean of points
    33-42 and 87-96, nose tip 86, mouth corners 52 and 61), the refined points
    (1 - w) * detector + w * landmarks, and the embedding of the crop aligned with them;
  * second scale: the detection repeated on a square crop of 2.5 x the face box's longer side
    around its centre (source resolution, capped at 2 x 640, black outside), mapped back.

usage: python gen_golden_levers.py [--testdata DIR] [--out DIR] [--models DIR] [--weight W]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import facepipe as fp  # noqa: E402
from gen_golden import PIPELINE_IMAGES, REPO, r, versions  # noqa: E402

CROP = 2.5


def alignment_points(lm: np.ndarray) -> np.ndarray:
    return np.stack([lm[33:43].mean(0), lm[87:97].mean(0), lm[86], lm[52], lm[61]])


def flip_embedding(pipe: fp.FacePipe, crop: np.ndarray) -> np.ndarray:
    a = pipe.embed(crop)
    b = pipe.embed(np.ascontiguousarray(cv2.flip(crop, 1)))
    s = a + b
    return s / np.linalg.norm(s)


def second_scale(pipe: fp.FacePipe, img: np.ndarray, det: fp.Detection):
    x1, y1, x2, y2 = det.box
    side = max(x2 - x1, y2 - y1)
    full = side * CROP
    crop_side = max(min(full, 2 * 640), 32.0)
    scale = crop_side / full
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    x0, y0 = cx - full / 2, cy - full / 2
    n = int(round(crop_side))
    # crop pixel (u, v) samples source (x0 + u / scale, y0 + v / scale)
    M = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]])
    crop = cv2.warpAffine(img, M, (n, n), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    found = pipe.detect(crop, 640)

    def back(p):
        return np.array([x0 + p[0] / scale, y0 + p[1] / scale])

    best, best_iou = None, 0.4
    for d in found:
        b = np.concatenate([back(d.box[:2]), back(d.box[2:])])
        iw = max(0.0, min(b[2], x2) - max(b[0], x1))
        ih = max(0.0, min(b[3], y2) - max(b[1], y1))
        inter = iw * ih
        union = (b[2] - b[0]) * (b[3] - b[1]) + (x2 - x1) * (y2 - y1) - inter
        iou = inter / union if union > 0 else 0.0
        if iou > best_iou:
            best, best_iou = (b, d.score, np.stack([back(k) for k in d.kps])), iou
    return {"crop": {"x0": round(float(x0), 4), "y0": round(float(y0), 4),
                     "scale": round(float(scale), 8), "side": n},
            "found": None if best is None else {
                "box": r(best[0], 3), "score": round(float(best[1]), 5), "kps": r(best[2], 3)}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--testdata", default=os.environ.get(
        "FACEGATE_TESTDATA", os.path.abspath(os.path.join(REPO, "..", "shared", "testdata"))))
    ap.add_argument("--out", default=os.path.join(REPO, "crates", "facegate-vision", "tests", "golden"))
    ap.add_argument("--models", default=None)
    ap.add_argument("--weight", type=float, default=0.5)
    a = ap.parse_args()
    pipe = fp.FacePipe(a.models)
    out = []
    for rel in PIPELINE_IMAGES:
        img = fp.load_image(os.path.join(a.testdata, rel))
        dets = pipe.detect(img, 640)
        pad = (0, 0)
        work = img
        if not dets:
            work, pad = fp.pad_border(img, 0.5)
            dets = pipe.detect(work, 640)
        best = fp.largest(dets)
        _, crop = pipe.align(work, best.kps)
        lm = pipe.landmarks106(work, best.box)
        five = alignment_points(lm)
        refined = (1 - a.weight) * best.kps + a.weight * five
        _, rcrop = pipe.align(work, refined)
        shift = np.array(pad, dtype=np.float64)
        entry = {
            "path": rel,
            "padded": pad != (0, 0),
            "keypoints": r(best.kps - shift, 3),
            "embedding": r(pipe.embed(crop), 6),
            "mirror_embedding": r(pipe.embed(np.ascontiguousarray(cv2.flip(crop, 1))), 6),
            "flip_embedding": r(flip_embedding(pipe, crop), 6),
            "landmark_points": r(five - shift, 3),
            "refined_points": r(refined - shift, 3),
            "refined_embedding": r(pipe.embed(rcrop), 6),
        }
        if not entry["padded"]:
            entry["second_scale"] = second_scale(pipe, img, best)
        out.append(entry)
    obj = {
        "generator": "tools/reference/gen_golden_levers.py",
        "versions": versions(),
        "description": __doc__.strip(),
        "landmark_weight": a.weight,
        "images": out,
    }
    path = os.path.join(a.out, "levers.json")
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
