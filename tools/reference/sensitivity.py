"""How much do the golden numbers move when resampling is done differently?

The golden data use OpenCV's uint8 resize/warpAffine (fixed-point weights, warp
coordinates quantised to 1/32 px). A Rust port will likely use plain float bilinear,
or an antialiasing resize (image::imageops Triangle, like Pillow's BILINEAR). This
runs the reference with those variants and reports the differences, to choose test
tolerances.

usage: python sensitivity.py [--testdata DIR] [--n-extra 40]
"""

import argparse
import csv
import json
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import facepipe as fp  # noqa: E402
from gen_golden import PIPELINE_IMAGES  # noqa: E402


def _bilinear_sample(img, xs, ys, border_zero):
    """Float bilinear sampling of HxWx3 uint8 at float coords -> float64 HxWx3."""
    h, w = img.shape[:2]
    src = img.astype(np.float64)
    x0 = np.floor(xs).astype(np.int64)
    y0 = np.floor(ys).astype(np.int64)
    fx = (xs - x0)[..., None]
    fy = (ys - y0)[..., None]

    def px(yy, xx):
        if border_zero:
            ok = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
            v = src[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
            return v * ok[..., None]
        return src[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]

    return ((1 - fy) * ((1 - fx) * px(y0, x0) + fx * px(y0, x0 + 1))
            + fy * ((1 - fx) * px(y0 + 1, x0) + fx * px(y0 + 1, x0 + 1)))


def float_resize(img, new_w, new_h):
    """Half-pixel-centre bilinear, no antialiasing, edge clamp (what cv2 does, in float)."""
    h, w = img.shape[:2]
    xs = (np.arange(new_w) + 0.5) * (w / new_w) - 0.5
    ys = (np.arange(new_h) + 0.5) * (h / new_h) - 0.5
    xs = np.clip(xs, 0, None)
    ys = np.clip(ys, 0, None)
    X, Y = np.meshgrid(xs, ys)
    return np.clip(np.rint(_bilinear_sample(img, X, Y, False)), 0, 255).astype(np.uint8)


def float_warp(img, M, size):
    """Inverse-mapped bilinear warp, pixels outside the image count as 0."""
    Mi = np.vstack([M, [0, 0, 1]])
    IM = np.linalg.inv(Mi)[:2]
    X, Y = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64))
    xs = IM[0, 0] * X + IM[0, 1] * Y + IM[0, 2]
    ys = IM[1, 0] * X + IM[1, 1] * Y + IM[1, 2]
    return np.clip(np.rint(_bilinear_sample(img, xs, ys, True)), 0, 255).astype(np.uint8)


def pil_resize(img, new_w, new_h):
    """Antialiased bilinear (Pillow BILINEAR ~ image crate Triangle filter)."""
    return np.asarray(Image.fromarray(img).resize((new_w, new_h), Image.BILINEAR))


def run(pipe, img):
    dets = pipe.detect(img, 640)
    padded = False
    if not dets:
        img, _ = fp.pad_border(img)
        dets = pipe.detect(img, 640)
        padded = True
    best = fp.largest(dets)
    if best is None:
        return None
    M, crop = pipe.align(img, best.kps)
    return dict(n=len(dets), box=best.box, kps=best.kps, score=best.score,
                emb=pipe.embed(crop), lm=pipe.landmarks106(img, best.box),
                mean=crop.reshape(-1, 3).mean(0), padded=padded)


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--testdata", default=os.environ.get(
        "FACEGATE_TESTDATA", os.path.abspath(os.path.join(here, "..", "..", "..", "shared", "testdata"))))
    ap.add_argument("--n-extra", type=int, default=40)
    a = ap.parse_args()

    paths = list(PIPELINE_IMAGES)
    rows = list(csv.DictReader(open(os.path.join(a.testdata, "faces/pairs.csv"))))
    extra = sorted({r["a"] for r in rows} | {r["b"] for r in rows})
    step = max(1, len(extra) // max(1, a.n_extra))
    paths += ["faces/" + p for p in extra[::step][: a.n_extra]]

    variants = {
        "float_resize+cv2_warp": (float_resize, fp.cv2_warp),
        "cv2_resize+float_warp": (fp.cv2_resize, float_warp),
        "float_resize+float_warp": (float_resize, float_warp),
        "antialias_resize+float_warp": (pil_resize, float_warp),
    }
    base = fp.FacePipe()
    imgs = {p: fp.load_image(os.path.join(a.testdata, p)) for p in paths}
    ref = {p: run(base, imgs[p]) for p in paths}
    summary = {}
    for name, (rf, wf) in variants.items():
        pipe = fp.FacePipe()
        pipe.resize_fn = staticmethod(rf)
        pipe.warp_fn = staticmethod(wf)
        st = dict(box=[], kps=[], score=[], cos=[], lm=[], mean=[], count_mismatch=0)
        for p in paths:
            r0, r1 = ref[p], run(pipe, imgs[p])
            if r0 is None or r1 is None or r0["n"] != r1["n"]:
                st["count_mismatch"] += 1
                if r0 is None or r1 is None:
                    continue
            st["box"].append(np.abs(r0["box"] - r1["box"]).max())
            st["kps"].append(np.abs(r0["kps"] - r1["kps"]).max())
            st["score"].append(abs(r0["score"] - r1["score"]))
            st["cos"].append(float(r0["emb"] @ r1["emb"]))
            st["lm"].append(np.abs(r0["lm"] - r1["lm"]).max())
            st["mean"].append(np.abs(r0["mean"] - r1["mean"]).max())
        summary[name] = {
            "images": len(paths),
            "detection_count_mismatch": st["count_mismatch"],
            "box_px_max": round(float(np.max(st["box"])), 3),
            "box_px_p95": round(float(np.percentile(st["box"], 95)), 3),
            "kps_px_max": round(float(np.max(st["kps"])), 3),
            "score_max": round(float(np.max(st["score"])), 4),
            "embedding_cos_min": round(float(np.min(st["cos"])), 5),
            "embedding_cos_median": round(float(np.median(st["cos"])), 5),
            "landmarks_px_max": round(float(np.max(st["lm"])), 3),
            "aligned_mean_max": round(float(np.max(st["mean"])), 3),
        }
        print(name, json.dumps(summary[name]), flush=True)


if __name__ == "__main__":
    main()
