"""Cross-check facepipe.py against the insightface Python package's own model classes.

Not needed to regenerate the golden files. Needs insightface (2.1 was used) installed
with --no-deps next to requirements.txt plus scikit-image, tqdm, requests, onnx.
Feeds both implementations the SAME decoded pixels (Pillow, EXIF-transposed, RGB;
insightface gets them as BGR as it expects), so only the pipeline code is compared.

usage: python crosscheck_insightface.py [--testdata DIR]
"""

import argparse
import json
import os
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import facepipe as fp  # noqa: E402
from gen_golden import PIPELINE_IMAGES  # noqa: E402


def main():
    from insightface.model_zoo import model_zoo
    from insightface.utils import face_align
    import insightface

    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--testdata", default=os.environ.get(
        "FACEGATE_TESTDATA", os.path.abspath(os.path.join(here, "..", "..", "..", "shared", "testdata"))))
    a = ap.parse_args()

    md = fp.default_model_dir()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    kw = dict(providers=["CPUExecutionProvider"], sess_options=so)
    det = model_zoo.get_model(os.path.join(md, "scrfd_500m_bnkps.onnx"), **kw)
    rec = model_zoo.get_model(os.path.join(md, "w600k_mbf.onnx"), **kw)
    lmk = model_zoo.get_model(os.path.join(md, "2d106det.onnx"), **kw)
    det.prepare(-1, input_size=(640, 640), det_thresh=0.5, nms_thresh=0.4)
    print("insightface", insightface.__version__)
    print("det", type(det).__name__, det.input_mean, det.input_std, det.output_names)
    print("rec", type(rec).__name__, rec.input_mean, rec.input_std)
    print("lmk", type(lmk).__name__, lmk.input_mean, lmk.input_std, lmk.input_size, lmk.lmk_num)

    pipe = fp.FacePipe()
    report = []
    for rel in PIPELINE_IMAGES:
        img = fp.load_image(os.path.join(a.testdata, rel))
        padded = False
        d_ref = pipe.detect(img, 640)
        if not d_ref:
            img, _ = fp.pad_border(img)
            padded = True
            d_ref = pipe.detect(img, 640)
        bgr = np.ascontiguousarray(img[:, :, ::-1])
        bb, kk = det.detect(bgr, input_size=(640, 640))
        row = {"path": rel, "padded": padded, "n_ref": len(d_ref), "n_if": int(bb.shape[0])}
        if len(d_ref) == bb.shape[0] and len(d_ref) > 0:
            row["max_box_diff"] = float(max(np.abs(d.box - bb[i, :4]).max() for i, d in enumerate(d_ref)))
            row["max_kps_diff"] = float(max(np.abs(d.kps - kk[i]).max() for i, d in enumerate(d_ref)))
            row["max_score_diff"] = float(max(abs(d.score - bb[i, 4]) for i, d in enumerate(d_ref)))
            best = fp.largest(d_ref)
            i = d_ref.index(best)
            M_if = face_align.estimate_norm(kk[i], 112)
            M_ref, crop = pipe.align(img, best.kps)
            row["max_matrix_diff"] = float(np.abs(M_if - M_ref).max())
            aimg = face_align.norm_crop(bgr, landmark=kk[i], image_size=112)
            row["max_crop_diff"] = int(np.abs(aimg[:, :, ::-1].astype(int) - crop.astype(int)).max())
            e_if = rec.get_feat(aimg)[0]
            e_if = e_if / np.linalg.norm(e_if)
            e_ref = pipe.embed(crop)
            row["embedding_cosine"] = float(e_if @ e_ref)

            class F(dict):
                __getattr__ = dict.get

                def __setattr__(self, k, v):
                    self[k] = v

            face = F(bbox=bb[i, :4])
            lm_if = lmk.get(bgr, face)
            lm_ref = pipe.landmarks106(img, best.box)
            row["max_landmark_diff"] = float(np.abs(lm_if - lm_ref).max())
        report.append(row)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
