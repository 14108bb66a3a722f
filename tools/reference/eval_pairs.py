"""Accuracy of the reference pipeline on testdata/faces/pairs.csv.

Each distinct image is embedded once (largest face at det size N; if no face, retried
on the image with a 50% black border). Reports EER, TAR at FAR 1e-2 / 1e-3 with
thresholds, per-source genuine min / impostor max, and detection failures.

usage: python eval_pairs.py [--testdata DIR] [--det-size 640] [--out results.json]
                            [--timing timing.csv]
"""

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import facepipe as fp  # noqa: E402


def tar_at_far(gen, imp, far):
    """Threshold t = the (k+1)-th highest impostor score, k = floor(far * n_imp);
    accept when score > t, so at most k impostors are accepted."""
    imp_sorted = np.sort(imp)[::-1]
    k = int(np.floor(far * len(imp)))
    t = float(imp_sorted[k]) if k < len(imp_sorted) else float(imp_sorted[-1])
    return {
        "far_target": far,
        "threshold": round(t, 6),
        "tar": round(float((gen > t).mean()), 6),
        "far_actual": round(float((imp > t).mean()), 6),
        "false_accepts": int((imp > t).sum()),
        "false_rejects": int((gen <= t).sum()),
    }


def eer(gen, imp):
    ts = np.unique(np.concatenate([gen, imp]))
    best = None
    for t in ts:
        far = (imp >= t).mean()
        frr = (gen < t).mean()
        gap = abs(far - frr)
        if best is None or gap < best[0]:
            best = (gap, (far + frr) / 2, t, far, frr)
    return {"eer": round(float(best[1]), 6), "threshold": round(float(best[2]), 6),
            "far": round(float(best[3]), 6), "frr": round(float(best[4]), 6)}


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--testdata", default=os.environ.get(
        "FACEGATE_TESTDATA", os.path.abspath(os.path.join(here, "..", "..", "..", "shared", "testdata"))))
    ap.add_argument("--pairs", default="faces/pairs.csv")
    ap.add_argument("--det-size", type=int, default=640)
    ap.add_argument("--out", default=None)
    ap.add_argument("--timing", default=None)
    a = ap.parse_args()

    rows = list(csv.DictReader(open(os.path.join(a.testdata, a.pairs))))
    images = sorted({r["a"] for r in rows} | {r["b"] for r in rows})
    pipe = fp.FacePipe()
    emb, info, timing = {}, {}, []
    for rel in images:
        t0 = time.perf_counter()
        img = fp.load_image(os.path.join(a.testdata, "faces", rel))
        t_dec = time.perf_counter()
        dets = pipe.detect(img, a.det_size)
        det_ms = pipe.timing["det_ms"]
        padded = False
        if not dets:
            img, _ = fp.pad_border(img, 0.5)
            dets = pipe.detect(img, a.det_size)
            det_ms += pipe.timing["det_ms"]
            padded = True
        t_det = time.perf_counter()
        best = fp.largest(dets)
        if best is not None:
            _, crop = pipe.align(img, best.kps)
            emb[rel] = pipe.embed(crop)
        t_end = time.perf_counter()
        info[rel] = {"padded": padded, "found": best is not None, "n_faces": len(dets)}
        timing.append({
            "path": rel, "w": img.shape[1], "h": img.shape[0], "padded": padded,
            "decode_ms": round((t_dec - t0) * 1e3, 2),
            "detect_total_ms": round((t_det - t_dec) * 1e3, 2),
            "det_model_ms": round(det_ms, 2),
            "align_embed_ms": round((t_end - t_det) * 1e3, 2),
            "rec_model_ms": round(pipe.timing.get("rec_ms", 0.0), 2) if best is not None else 0.0,
        })

    gen, imp, by_src = [], [], {}
    missing = 0
    for r in rows:
        if r["a"] not in emb or r["b"] not in emb:
            missing += 1
            continue
        s = float(emb[r["a"]] @ emb[r["b"]])
        (gen if r["same"] == "1" else imp).append(s)
        d = by_src.setdefault(r["source"], {"genuine": [], "impostor": []})
        d["genuine" if r["same"] == "1" else "impostor"].append(s)
    gen, imp = np.array(gen), np.array(imp)

    src_stats = {}
    for k, d in sorted(by_src.items()):
        g, i = np.array(d["genuine"]), np.array(d["impostor"])
        src_stats[k] = {
            "n_genuine": len(g), "n_impostor": len(i),
            "genuine_min": round(float(g.min()), 4) if len(g) else None,
            "genuine_mean": round(float(g.mean()), 4) if len(g) else None,
            "impostor_max": round(float(i.max()), 4) if len(i) else None,
            "impostor_mean": round(float(i.mean()), 4) if len(i) else None,
        }
    padded_imgs = sorted(k for k, v in info.items() if v["padded"])
    pad_by_src = {}
    for k in padded_imgs:
        pad_by_src[k.split("/")[0]] = pad_by_src.get(k.split("/")[0], 0) + 1
    n_by_src = {}
    for k in images:
        n_by_src[k.split("/")[0]] = n_by_src.get(k.split("/")[0], 0) + 1
    tt = {k: np.array([t[k] for t in timing if not t["padded"]]) for k in
          ("decode_ms", "detect_total_ms", "det_model_ms", "align_embed_ms", "rec_model_ms")}
    res = {
        "det_size": a.det_size,
        "pairs": len(rows), "pairs_scored": int(len(gen) + len(imp)), "pairs_missing_face": missing,
        "n_genuine": int(len(gen)), "n_impostor": int(len(imp)),
        "images": len(images),
        "images_no_face_at_all": sorted(k for k, v in info.items() if not v["found"]),
        "images_needing_padding": len(padded_imgs),
        "images_needing_padding_by_source": {k: f"{pad_by_src.get(k, 0)}/{n}" for k, n in sorted(n_by_src.items())},
        "images_with_multiple_faces": sorted(k for k, v in info.items() if v["n_faces"] > 1),
        "eer": eer(gen, imp),
        "tar_at_far_1e-2": tar_at_far(gen, imp, 1e-2),
        "tar_at_far_1e-3": tar_at_far(gen, imp, 1e-3),
        "genuine_min": round(float(gen.min()), 4), "impostor_max": round(float(imp.max()), 4),
        "per_source": src_stats,
        "timing_median_ms_unpadded": {k: round(float(np.median(v)), 2) for k, v in tt.items()},
    }
    print(json.dumps(res, indent=1))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    if a.timing:
        with open(a.timing, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(timing[0].keys()))
            w.writeheader()
            w.writerows(timing)


if __name__ == "__main__":
    main()
