"""Write the golden JSON files for crates/facegate-vision/tests/golden/.

usage: python gen_golden.py [--testdata DIR] [--out DIR] [--models DIR]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import sys

import cv2
import numpy as np
import onnxruntime as ort
import PIL
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import facepipe as fp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

PIPELINE_IMAGES = [
    "faces/deepface/person_img1/img1.jpg",       # large portrait JPEG 1382x1868
    "faces/deepface/person_img8/img47.jpg",      # WEBP despite the .jpg name
    "faces/deepface/person_img3/img54.jpg",      # 3 detections, 2000x2400
    "faces/deepface/person_img16/img62.jpg",     # 2 detections, landscape 660x440
    "faces/dlib_johns/John_Salley/000179_02159509.jpg",  # 150x150 tight crop
    "faces/faceapi_bbt/amy/amy1.png",            # 150x150 greyscale PNG
    "faces/orl_att/s1/1.pgm",                    # 92x112 greyscale PGM
    "liveness/silent_face/image_T1.jpg",         # EXIF orientation 6 (stored 640x480)
]


def r(x, nd):
    return [round(float(v), nd) for v in np.ravel(x)]


def mat(M, nd=8):
    return [[round(float(v), nd) for v in row] for row in M]


def versions():
    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "onnxruntime": ort.__version__,
        "opencv": cv2.__version__,
        "pillow": PIL.__version__,
    }


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def skimage_similarity(src, dst):
    try:
        from skimage.transform import SimilarityTransform
    except Exception:  # pragma: no cover
        return None, None
    if hasattr(SimilarityTransform, "from_estimate"):
        t = SimilarityTransform.from_estimate(src, dst)
    else:
        t = SimilarityTransform()
        t.estimate(src, dst)
    import skimage

    return t.params[:2, :], skimage.__version__


# --------------------------------------------------------------------------- alignment


def alignment_cases(pipe, testdata):
    dst = fp.ARCFACE_DST
    rng = np.random.default_rng(20240601)

    def similar(src_pts, angle_deg, scale, tx, ty):
        a = math.radians(angle_deg)
        R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) * scale
        return src_pts @ R.T + np.array([tx, ty])

    cases = []
    # 1. a real detection (frontal portrait)
    img = fp.load_image(os.path.join(testdata, "faces/deepface/person_img1/img1.jpg"))
    det = fp.largest(pipe.detect(img))
    cases.append(("frontal_real_detection", np.round(det.kps, 4)))
    # 2. identity: the template itself
    cases.append(("template_identity", dst.copy()))
    # 3. rotated ~30 degrees (head tilt), scaled up, noisy
    pts = similar(dst - 56, 30.0, 2.3, 320, 240) + rng.normal(0, 1.5, (5, 2))
    cases.append(("rotated_30deg_noisy", np.round(pts, 4)))
    # 4. rotated 90 degrees (camera on its side, no EXIF), non-exact
    pts = similar(dst - 56, -90.0, 1.7, 200, 400) + rng.normal(0, 1.0, (5, 2))
    cases.append(("rotated_minus90deg", np.round(pts, 4)))
    # 5. tiny face: eye distance ~ 6 px
    pts = similar(dst - 56, 5.0, 0.17, 37.3, 18.9) + rng.normal(0, 0.3, (5, 2))
    cases.append(("tiny_face", np.round(pts, 4)))
    # 6. mirrored: x flipped (left/right swapped) -> det(A) < 0, reflection forbidden
    pts = dst.copy()
    pts[:, 0] = 112 - pts[:, 0]
    pts = pts * 1.9 + np.array([100.0, 50.0])
    cases.append(("mirrored_x", np.round(pts, 4)))
    # 7. turned head (yaw): nose shifted sideways, eyes compressed
    pts = np.array([[210.2, 180.4], [262.9, 176.1], [268.5, 215.0], [220.4, 250.3], [261.7, 247.8]])
    cases.append(("yaw_profile_like", pts))

    out = []
    maxdiff_sk = 0.0
    maxdiff_cf = 0.0
    skver = None
    for name, src in cases:
        M = fp.umeyama_similarity(src, dst)
        Mcf = fp.closed_form_similarity(src, dst)
        Msk, skver = skimage_similarity(src, dst)
        dsk = float(np.abs(M - Msk).max()) if Msk is not None else None
        dcf = float(np.abs(M - Mcf).max())
        maxdiff_cf = max(maxdiff_cf, dcf)
        if dsk is not None:
            maxdiff_sk = max(maxdiff_sk, dsk)
        resid = fp.apply_affine(M, src) - dst
        out.append({
            "name": name,
            "src": [[float(x), float(y)] for x, y in src],
            "matrix": mat(M, 10),
            "scale": round(float(math.hypot(M[0, 0], M[1, 0])), 10),
            "rotation_deg": round(math.degrees(math.atan2(M[1, 0], M[0, 0])), 8),
            "rms_residual": round(float(np.sqrt((resid**2).sum(1).mean())), 8),
            "max_abs_diff_vs_skimage": dsk,
            "max_abs_diff_vs_closed_form": dcf,
        })
    return {
        "description": (
            "Least-squares similarity (rotation+uniform scale+translation, no reflection) "
            "mapping src keypoints (x,y in source image pixels, order: left eye, right eye, "
            "nose, left mouth corner, right mouth corner as seen in the image) to dst. "
            "matrix is 2x3 [[a,-b,tx],[b,a,ty]] so that dst ~= matrix @ [x,y,1]. "
            "Computed with Umeyama (tools/reference/facepipe.py umeyama_similarity), "
            "cross-checked against skimage.transform.SimilarityTransform and the 2-D closed form."
        ),
        "dst": dst.tolist(),
        "cross_check": {
            "skimage": skver,
            "max_abs_diff_vs_skimage": maxdiff_sk,
            "max_abs_diff_vs_closed_form": maxdiff_cf,
        },
        "suggested_tolerance": 1e-6,
        "cases": out,
    }


# --------------------------------------------------------------------------- letterbox


def letterbox_cases():
    sizes = [(640, 480), (480, 640), (1382, 1868), (1350, 1800), (150, 150), (92, 112),
             (1920, 1080), (1080, 1920), (1000, 333), (333, 1000), (4352, 3264), (660, 440),
             (2000, 2400), (184, 224), (300, 300), (1, 1000), (641, 1), (700, 699),
             # portrait sizes where f64 division + truncation differs from integer floor
             (424, 640), (427, 640), (435, 600), (406, 560), (29, 40)]
    out = []
    for w, h in sizes:
        for size in (320, 640):
            nw, nh, s = fp.letterbox_dims(w, h, size)
            iw, ih = (size, (size * h) // w) if h <= w else ((size * w) // h, size)
            out.append({
                "w": w, "h": h, "det_size": size,
                "resized_w": nw, "resized_h": nh,
                "scale": round(s, 12),
                "scale_x": round(nw / w, 12),
                "scale_y": round(nh / h, 12),
                "integer_floor_differs": (iw, ih) != (nw, nh),
            })
    return {
        "description": (
            "insightface SCRFD letterbox arithmetic. im_ratio = h as f64 / w as f64; if im_ratio > 1 "
            "{ resized_h = det_size; resized_w = floor(det_size / im_ratio) } else "
            "{ resized_w = det_size; resized_h = floor(det_size * im_ratio) }; "
            "scale = resized_h / h (insightface divides boxes and keypoints by this one "
            "number for both axes; scale_x/scale_y are the exact per-axis factors for information). "
            "The resized image is pasted top-left on a det_size x det_size zero canvas. "
            "Compute it exactly so, in f64 with a division by im_ratio: for some portrait sizes "
            "(e.g. 424x640 -> 423 at det_size 640) integer floor(det_size*w/h) gives one more pixel "
            "(integer_floor_differs=true). "
            "Note resized_w/resized_h can be 0 for absurd aspect ratios (see w=1,h=1000 / w=641,h=1)."
        ),
        "cases": out,
    }


# --------------------------------------------------------------------------- pipeline


def run_one(pipe, img, det_sizes=(640, 320)):
    res = {"size": {"w": int(img.shape[1]), "h": int(img.shape[0])}}
    dets640 = pipe.detect(img, 640)
    res["det640"] = [d.to_json() for d in dets640]
    if 320 in det_sizes:
        res["det320"] = [d.to_json() for d in pipe.detect(img, 320)]
    best = fp.largest(dets640)
    if best is None:
        res["largest_index"] = None
        return res, None
    res["largest_index"] = dets640.index(best)
    M, crop = pipe.align(img, best.kps)
    c = crop.reshape(-1, 3).astype(np.float64)
    emb = pipe.embed(crop)
    lm = pipe.landmarks106(img, best.box)
    res["alignment_matrix"] = mat(M, 8)
    res["aligned_mean_rgb"] = r(c.mean(0), 4)
    res["aligned_std_rgb"] = r(c.std(0), 4)
    res["landmark_crop_matrix"] = mat(fp.FacePipe.landmark_affine(best.box), 8)
    res["embedding"] = r(emb, 6)
    res["landmarks106"] = [[round(float(x), 2), round(float(y), 2)] for x, y in lm]
    return res, emb


def pipeline_cases(pipe, testdata):
    out = []
    for rel in PIPELINE_IMAGES:
        path = os.path.join(testdata, rel)
        with Image.open(path) as im:
            fmt, mode, raw_size = im.format, im.mode, im.size
            orient = im.getexif().get(0x0112)
        img = fp.load_image(path)
        entry = {
            "path": rel,
            "sha256": sha256(path),
            "format": fmt,
            "mode": mode,
            "stored_size": {"w": raw_size[0], "h": raw_size[1]},
            "exif_orientation": orient,
        }
        res, _ = run_one(pipe, img)
        entry.update(res)
        if res["largest_index"] is None:
            padded, (px, py) = fp.pad_border(img, 0.5)
            pres, _ = run_one(pipe, padded)
            pres["pad"] = {"left_right": px, "top_bottom": py}
            entry["padded"] = pres
        out.append(entry)
    return {
        "description": (
            "Full reference pipeline per image (tools/reference/facepipe.py). Paths are relative "
            "to the testdata root (../shared/testdata or $FACEGATE_TESTDATA). size = after EXIF "
            "orientation. det640/det320: all detections after NMS in score order, boxes "
            "[x1,y1,x2,y2] and 5 keypoints in image pixels. largest_index: the det640 entry with "
            "the largest box area; alignment_matrix/aligned_*/embedding/landmarks106 are for it. "
            "aligned_mean_rgb/std_rgb: per-channel mean and population std (ddof=0) of the 112x112 "
            "uint8 aligned crop. landmark_crop_matrix: the image->192x192 affine used for "
            "2d106det. When det640 finds no face, 'padded' repeats everything on the image with a "
            "black border of int(0.5*w) left and right and int(0.5*h) top and bottom; its "
            "coordinates are in the padded image (subtract pad to get original pixels)."
        ),
        "tolerances_suggested": TOLERANCES,
        "images": out,
    }


TOLERANCES = {
    "note": (
        "Golden values come from Pillow decode + OpenCV uint8 resize/warp (fixed-point). A Rust "
        "port with float bilinear resampling (half-pixel centres, NO antialiasing) and another "
        "JPEG decoder differs slightly; measured with float bilinear on 48 images: box <= 0.27 px, "
        "kps <= 0.46 px (<= 0.07% of face size), landmarks <= 0.22% of face size, embedding "
        "cosine >= 0.9975. An antialiasing resize for the detector letterbox (Pillow BILINEAR, "
        "image crate Triangle) moved kps up to 20 px on a 4600 px photo and dropped cosine to "
        "0.90: do not use one. face = max(box w, box h). See tools/reference/README.md."
    ),
    "box_px": "max(1.5, 0.01 * face)",
    "kps_px": "max(1.5, 0.01 * face)",
    "landmarks_px": "max(2.0, 0.015 * face)",
    "score_abs": 0.02,
    "alignment_matrix_rel": 0.01,
    "aligned_mean_abs": 1.5,
    "aligned_std_abs": 1.5,
    "embedding_cosine_min": 0.99,
}


# --------------------------------------------------------------------------- pairs


def pairs_reference(pipe, testdata, n=40):
    all_rows = list(csv.DictReader(open(os.path.join(testdata, "faces/pairs_small.csv"))))
    rows = all_rows[:n]
    # the first n rows are all deepface; add a few of every other source (tight crops
    # that need the padding retry at 640)
    extra, seen = [], {}
    for row in all_rows[n:]:
        src = row["source"]
        if src != "deepface" and seen.get(src, 0) < 3:
            seen[src] = seen.get(src, 0) + 1
            extra.append(row)
    cache = {}

    def get(rel):
        if rel not in cache:
            img = fp.load_image(os.path.join(testdata, "faces", rel))
            dets = pipe.detect(img, 640)
            padded = False
            if not dets:
                img, _ = fp.pad_border(img, 0.5)
                dets = pipe.detect(img, 640)
                padded = True
            best = fp.largest(dets)
            if best is None:
                cache[rel] = (None, padded)
            else:
                _, crop = pipe.align(img, best.kps)
                cache[rel] = (pipe.embed(crop), padded)
        return cache[rel]

    def score(rows_):
        out_ = []
        for row in rows_:
            ea, pa = get(row["a"])
            eb, pb = get(row["b"])
            cos = None if ea is None or eb is None else round(float(ea @ eb), 6)
            out_.append({
                "a": row["a"], "b": row["b"], "same": int(row["same"]), "source": row["source"],
                "cosine": cos, "a_padded": pa, "b_padded": pb,
            })
        return out_

    out = score(rows)
    out_extra = score(extra)
    return {
        "description": (
            "Cosine similarity (dot product of L2-normalised w600k_mbf embeddings of the largest "
            "det640 face) for the first %d rows of faces/pairs_small.csv. Paths are relative to "
            "testdata/faces/. *_padded: no face at 640 on the original, so the image was given a "
            "50%% black border (int(0.5*w) left/right, int(0.5*h) top/bottom) and detected again. "
            "extra_pairs: the first 3 later rows of each non-deepface source, same method." % n
        ),
        "suggested_tolerance": 0.01,
        "images_needing_padding": sorted(k for k, v in cache.items() if v[1]),
        "pairs": out,
        "extra_pairs": out_extra,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--testdata", default=os.environ.get(
        "FACEGATE_TESTDATA", os.path.abspath(os.path.join(REPO, "..", "shared", "testdata"))))
    ap.add_argument("--out", default=os.path.join(REPO, "crates", "facegate-vision", "tests", "golden"))
    ap.add_argument("--models", default=None)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    pipe = fp.FacePipe(a.models)
    meta = {"generator": "tools/reference/gen_golden.py", "versions": versions()}

    def write(name, obj):
        obj = {**meta, **obj}
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
        print("wrote", os.path.join(a.out, name))

    write("alignment.json", alignment_cases(pipe, a.testdata))
    write("letterbox.json", letterbox_cases())
    write("pipeline.json", pipeline_cases(pipe, a.testdata))
    write("pairs_reference.json", pairs_reference(pipe, a.testdata))


if __name__ == "__main__":
    main()
