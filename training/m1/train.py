"""M1 training: one step (discriminators first, then everything else), the resumable loop,
evaluation and feature extraction.

A step on ``K`` quadruples ``(a, a-, p, p-)`` (``4K`` images, block order ``[a, a-, p, p-]``):

1. discriminators, on detached encoder outputs: ``D_img`` (LSGAN, real frames against the
   self-reconstructions and the swapped generations), the identity discriminator (pairs of AU
   embeddings ``(a, a-)``, ``(p, p-)`` are the same person; ``(a, p)``, ``(a-, p-)`` are the same
   person only for temporal positives; BCE), the geometry discriminator (49 landmark cells from
   ``z``, cross-entropy);
2. everything else: weighted BCE on the AU logits; self-reconstruction ``G(z_i, a_i) ~ x_i``
   (L1); swap within each pair ``(x1, x2)``: ``x12 = G(z1, a2)``, ``x21 = G(z2, a1)``, re-encode
   and pull ``a(x12) -> a2``, ``z(x12) -> z1`` (and the mirror pair; least squares, targets
   detached), swap again ``G(z(x12), a(x21)) ~ x1`` and ``G(z(x21), a(x12)) ~ x2`` (cycle L1);
   LSGAN generator loss on all generations; SupCon on ``z`` by identity and on the per-AU
   embeddings ``e``; orthogonality of the codes; landmarks from ``a`` (cross-entropy);
   adversarial terms: the identity discriminator pushed to 0.5 on AU-embedding pairs, the
   geometry discriminator's maps from ``z`` pushed to uniform.

Variants (``train.variant``): ``m1`` (all), ``no_contrast_adv`` (``id``, ``au``, ``adv_id``,
``adv_geo`` weights set to 0, and no identity / geometry discriminators), ``bce`` (the same
network, weighted BCE only: the plain detector).

Checkpoints every ``train.chunk`` steps under ``<out_dir>/checkpoints`` (safetensors: the
networks and both Adam states; JSON sidecar: the step); the sampler is reseeded per chunk from
``(seed, chunk)``, so a killed run resumed from its newest checkpoint ends with the same weights.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from auperf.nets.m1 import M1Net, cooccurrence_adjacency

from ..common.config import config_to_dict
from ..common.metrics import evaluate_occurrence, tune_thresholds
from ..common.seed import epoch_seed, seed_everything
from ..m0.losses import au_balance_weights
from . import losses as L
from .auxnets import M1Aux
from .config import M1Config
from .data import TEST, TRAIN, VAL, PairSampler, VideoFaces, landmark_cells, render_video_faces

__all__ = [
    "M1Model",
    "M1Step",
    "build_model",
    "normalise",
    "train_m1",
    "predict",
    "evaluate",
    "load_faces",
]

_log = logging.getLogger("auperf.training")


def normalise(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, 3, S, S)`` RGB -> float32 ``(pixel - 127.5) / 127.5`` in ``[-1, 1]``."""
    x = torch.as_tensor(images)
    return (x.float() - 127.5) / 127.5


class M1Model(torch.nn.Module):
    """The inference network :class:`auperf.nets.m1.M1Net` (``net``) and the training-only
    parts :class:`training.m1.auxnets.M1Aux` (``aux``)."""

    def __init__(self, net: M1Net, aux: M1Aux) -> None:
        super().__init__()
        self.net, self.aux = net, aux


def build_model(cfg: M1Config, adjacency: np.ndarray) -> M1Model:
    """The untrained networks of a run (``adjacency`` from the training labels)."""
    net = M1Net(len(cfg.au_ids), adjacency, cfg.embed_dim, cfg.node_dim, cfg.width)
    aux = M1Aux(cfg.embed_dim, cfg.gen_size, cfg.gen_width, cfg.landmark_grid)
    return M1Model(net, aux)


@dataclass
class M1Step:
    """One training step with its optimisers and the statistics of the training labels.

    Attributes:
        model: the networks.
        cfg: the run configuration.
        alpha: ``(C,)`` per-AU BCE weights (inverse positive rate, mean 1).
        balance: ``(C, 2)`` imbalance weights of the per-AU contrastive loss.
        opt_main, opt_disc: Adam over the main networks / the discriminators.
    """

    model: M1Model
    cfg: M1Config
    alpha: torch.Tensor
    balance: torch.Tensor
    opt_main: torch.optim.Optimizer
    opt_disc: torch.optim.Optimizer

    @classmethod
    def create(cls, model: M1Model, cfg: M1Config, train_labels: np.ndarray) -> M1Step:
        y = torch.as_tensor(train_labels.astype(np.int64))
        main = [*model.net.parameters(), *model.aux.main_parameters()]
        return cls(
            model,
            cfg,
            au_balance_weights(y),
            L.au_label_balance(y),
            torch.optim.Adam(main, lr=cfg.train.lr, betas=(0.5, 0.999)),
            torch.optim.Adam(
                model.aux.discriminator_parameters(), lr=cfg.train.lr_disc, betas=(0.5, 0.999)
            ),
        )

    def weights(self) -> dict[str, float]:
        """The loss weights of the run's variant."""
        w = {k: float(v) for k, v in config_to_dict(self.cfg.loss).items() if k != "au_weights"}
        v = self.cfg.train.variant
        if v == "no_contrast_adv":
            for k in ("id", "au", "adv_id", "adv_geo"):
                w[k] = 0.0
        elif v == "bce":
            for k in w:
                if k not in ("bce", "tau_id", "tau_au"):
                    w[k] = 0.0
        return w

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One step on ``batch``: ``image`` ``(4K, 3, S, S)`` float, ``labels`` ``(4K, C)``,
        ``identity`` ``(4K,)``, ``cells`` ``(4K, 49)``; returns the loss terms."""
        net, aux = self.model.net, self.model.aux
        w = self.weights()
        x, y, ident, cells = batch["image"], batch["labels"], batch["identity"], batch["cells"]
        factor = x.shape[-1] // self.cfg.gen_size
        xg = F.avg_pool2d(x, factor) if factor > 1 else x  # the generator's target size

        def up(img: torch.Tensor) -> torch.Tensor:  # generated -> encoder input size
            if factor == 1:
                return img
            return F.interpolate(img, scale_factor=factor, mode="bilinear", align_corners=False)

        k = x.shape[0] // 4
        ia, ian, ip, ipn = (torch.arange(k) + j * k for j in range(4))
        # pairs (x1, x2) of the swap: (a, a-) and (p, p-)
        i1, i2 = torch.cat([ia, ip]), torch.cat([ian, ipn])
        # identity-discriminator pairs and their same-person targets
        d1, d2 = torch.cat([ia, ip, ia, ian]), torch.cat([ian, ipn, ip, ipn])
        same = (ident[d1] == ident[d2]).float()
        logs: dict[str, float] = {}
        generative = w["rec"] > 0 or w["gan"] > 0 or w["emb"] > 0 or w["cycle"] > 0
        self.model.train()

        # 1. discriminators
        if generative or w["adv_id"] > 0 or w["adv_geo"] > 0:
            with torch.no_grad():
                e, a = net.encode_au(x)
                z = net.encode_id(x)
            d_loss = x.sum() * 0.0
            if generative and w["gan"] > 0:
                with torch.no_grad():
                    fake = torch.cat(
                        [
                            aux.generator(z, a),
                            aux.generator(z[i1], a[i2]),
                            aux.generator(z[i2], a[i1]),
                        ]
                    )
                l_dimg = L.lsgan_discriminator_loss(aux.image_disc(xg), aux.image_disc(fake))
                d_loss = d_loss + l_dimg
                logs["d_img"] = float(l_dimg.detach())
            if w["adv_id"] > 0:
                l_did = L.pair_discriminator_loss(aux.identity_disc(a[d1], a[d2]), same)
                d_loss = d_loss + l_did
                logs["d_id"] = float(l_did.detach())
            if w["adv_geo"] > 0:
                l_dgeo = L.landmark_loss(aux.geometry_disc(z), cells)
                d_loss = d_loss + l_dgeo
                logs["d_geo"] = float(l_dgeo.detach())
            if d_loss.requires_grad:
                self.opt_disc.zero_grad(set_to_none=True)
                d_loss.backward()
                self.opt_disc.step()

        # 2. everything else
        out = net(x)
        e, a, z = out.e, out.a, out.z
        terms: dict[str, torch.Tensor] = {"bce": L.weighted_bce(out.logits, y, self.alpha)}
        if generative:
            g = aux.generator
            rec = g(z, a)
            x12, x21 = g(z[i1], a[i2]), g(z[i2], a[i1])
            terms["rec"] = L.l1_loss(rec, xg)
            if w["emb"] > 0 or w["cycle"] > 0:
                sw = up(torch.cat([x12, x21]))
                _, a_sw = net.encode_au(sw)
                z_sw = net.encode_id(sw)
                n = x12.shape[0]
                a12, a21, z12, z21 = a_sw[:n], a_sw[n:], z_sw[:n], z_sw[n:]
                terms["emb"] = 0.5 * (
                    L.embedding_consistency_loss(a12, a[i2].detach())
                    + L.embedding_consistency_loss(z12, z[i1].detach())
                    + L.embedding_consistency_loss(a21, a[i1].detach())
                    + L.embedding_consistency_loss(z21, z[i2].detach())
                )
                terms["cycle"] = 0.5 * (
                    L.l1_loss(g(z12, a21), xg[i1]) + L.l1_loss(g(z21, a12), xg[i2])
                )
            if w["gan"] > 0:
                terms["gan"] = L.lsgan_generator_loss(aux.image_disc(torch.cat([rec, x12, x21])))
        if w["id"] > 0:
            terms["id"] = L.supcon_identity_loss(z, ident, w["tau_id"])
        if w["au"] > 0:
            aw = self.cfg.loss.au_weights or [1.0] * y.shape[1]
            terms["au"] = L.supcon_au_loss(
                e, y, w["tau_au"], torch.tensor(aw, dtype=torch.float32), self.balance
            )
        if w["orth"] > 0:
            terms["orth"] = L.orthogonality_loss(
                net.au_encoder.head.weight, net.id_encoder.head.weight, a, z
            )
        if w["landmark"] > 0:
            terms["landmark"] = L.landmark_loss(aux.landmarks(a), cells)
        if w["adv_id"] > 0:
            terms["adv_id"] = L.pair_confusion_loss(aux.identity_disc(a[d1], a[d2]))
        if w["adv_geo"] > 0:
            terms["adv_geo"] = L.uniform_landmark_loss(aux.geometry_disc(z))
        total = sum(w[name] * t for name, t in terms.items())
        self.opt_main.zero_grad(set_to_none=True)
        total.backward()
        self.opt_main.step()
        # the discriminators' gradients from the adversarial terms are not used
        self.opt_disc.zero_grad(set_to_none=True)
        logs.update({name: float(t.detach()) for name, t in terms.items()})
        logs["total"] = float(total.detach())
        return logs


def make_batch(faces: VideoFaces, quads: np.ndarray, cfg: M1Config) -> dict[str, torch.Tensor]:
    """Images, labels, identities and landmark cells of quadruples ``(K, 4)``, block order
    ``[a..., a-..., p..., p-...]``."""
    idx = quads.T.reshape(-1)
    return {
        "image": normalise(faces.images[idx]),
        "labels": torch.as_tensor(faces.labels[idx].astype(np.float32)),
        "identity": torch.as_tensor(faces.identity[idx]),
        "cells": torch.as_tensor(
            landmark_cells(faces.landmarks[idx], cfg.input_size, cfg.landmark_grid)
        ),
    }


# -- checkpoints ------------------------------------------------------------------------------


def _opt_tensors(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    out = {}
    for pid, st in opt.state_dict()["state"].items():
        for key, v in st.items():
            out[f"{prefix}.{pid}.{key}"] = torch.as_tensor(v).detach().cpu().clone()
    return out


def _load_opt(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, v in tensors.items():
        if name.startswith(prefix + "."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = v
    sd = opt.state_dict()
    sd["state"] = state
    opt.load_state_dict(sd)


def save_checkpoint(step: M1Step, directory: Path, done: int, cpu_seconds: float = 0.0) -> Path:
    """Write ``step-NNNNNN.safetensors`` (networks + optimiser states) and its JSON sidecar."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"model.{k}": v.detach().cpu().contiguous() for k, v in step.model.state_dict().items()
    }
    tensors.update(_opt_tensors(step.opt_main, "opt_main"))
    tensors.update(_opt_tensors(step.opt_disc, "opt_disc"))
    path = directory / f"step-{done:06d}.safetensors"
    save_file(tensors, str(path), metadata={"format": "auperf-m1-checkpoint"})
    path.with_suffix(".json").write_text(
        json.dumps({"step": done, "cpu_seconds": cpu_seconds}), encoding="utf-8"
    )
    return path


def latest_checkpoint(directory: Path, max_step: int | None = None) -> tuple[int, Path] | None:
    """The newest checkpoint whose sidecar exists (written last) and whose step is at most
    ``max_step`` (``None``: any), or ``None``."""
    found = sorted(
        (int(p.stem.split("-")[1]), p)
        for p in directory.glob("step-*.safetensors")
        if p.with_suffix(".json").is_file()
    )
    if max_step is not None:
        found = [f for f in found if f[0] <= max_step]
    return found[-1] if found else None


def load_checkpoint(step: M1Step, path: Path) -> tuple[int, float]:
    """Restore networks and optimisers; returns the step and the CPU seconds spent so far."""
    tensors = load_file(str(path))
    model_sd = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    step.model.load_state_dict(model_sd, strict=True)
    _load_opt(step.opt_main, tensors, "opt_main")
    _load_opt(step.opt_disc, tensors, "opt_disc")
    side = json.loads(path.with_suffix(".json").read_text())
    return int(side["step"]), float(side.get("cpu_seconds", 0.0))


# -- loop -------------------------------------------------------------------------------------


def load_faces(cfg: M1Config, progress: bool = False) -> VideoFaces:
    """The run's aligned video frames (rendered or read from the cache)."""
    return render_video_faces(cfg.data, list(cfg.au_ids), cfg.input_size, progress)


def train_m1(
    cfg: M1Config, faces: VideoFaces | None = None, max_steps: int | None = None
) -> dict[str, Any]:
    """Train (or resume) one run.

    Returns:
        ``{"model", "step", "faces", "cpu_seconds", "adjacency"}``: ``cpu_seconds`` is the
        process CPU time of the training so far (all calls, from the checkpoints).

    Args:
        cfg: the run configuration.
        faces: the frames (default :func:`load_faces`).
        max_steps: stop after this many steps in this call (to test resuming); ``None``: run to
            ``train.iterations``.
    """
    torch.set_num_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)
    faces = load_faces(cfg) if faces is None else faces
    train = faces.subset(np.flatnonzero(faces.split == TRAIN))
    adjacency = cooccurrence_adjacency(train.labels, cfg.adjacency_threshold)
    model = build_model(cfg, adjacency)
    step = M1Step.create(model, cfg, train.labels)
    sampler = PairSampler(train.labels, train.identity, train.time, cfg.sampler)
    out = Path(cfg.train.out_dir)
    ckpt_dir = out / "checkpoints"
    done, cpu_before = 0, 0.0
    found = latest_checkpoint(ckpt_dir, cfg.train.iterations)
    if found is not None:
        done, cpu_before = load_checkpoint(step, found[1])
        _log.info("m1: resumed %s at step %d", found[1], done)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "metrics.jsonl"
    t0 = time.process_time()
    limit = (
        cfg.train.iterations if max_steps is None else min(cfg.train.iterations, done + max_steps)
    )
    bar = tqdm(total=limit, initial=done, disable=not cfg.train.progress, desc=cfg.train.variant)
    while done < limit:
        chunk = done // cfg.train.chunk
        rng = np.random.default_rng(epoch_seed(cfg.train.seed, chunk))
        torch.manual_seed(epoch_seed(cfg.train.seed + 1, chunk))
        # skip the draws of the steps of this chunk already done (resume inside a chunk)
        first = chunk * cfg.train.chunk
        for _ in range(first, done):
            sampler.draw(rng, cfg.train.pairs_per_batch)
        sums: dict[str, float] = {}
        end = min(limit, first + cfg.train.chunk)
        n = 0
        while done < end:
            logs = step(make_batch(train, sampler.draw(rng, cfg.train.pairs_per_batch), cfg))
            for kk, v in logs.items():
                sums[kk] = sums.get(kk, 0.0) + v
            n += 1
            done += 1
            bar.update(1)
        if done % cfg.train.chunk == 0 or done == cfg.train.iterations:
            save_checkpoint(step, ckpt_dir, done, cpu_before + time.process_time() - t0)
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(
                json.dumps({"step": done, **{k: v / max(n, 1) for k, v in sums.items()}}) + "\n"
            )
    bar.close()
    return {
        "model": model,
        "step": done,
        "faces": faces,
        "cpu_seconds": cpu_before + time.process_time() - t0,
        "adjacency": adjacency,
    }


@torch.no_grad()
def predict(net: M1Net, images: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
    """Probabilities ``(N, C)``, AU embeddings ``a`` ``(N, D)`` and identity embeddings ``z``
    ``(N, D)`` of uint8 crops ``(N, 3, S, S)`` (eval mode; the mode is restored)."""
    was = net.training
    net.eval()
    probs, a_all, z_all = [], [], []
    try:
        for s in range(0, len(images), batch):
            out = net(normalise(images[s : s + batch]))
            probs.append(torch.sigmoid(out.logits).numpy())
            a_all.append(out.a.numpy())
            z_all.append(out.z.numpy())
    finally:
        net.train(was)
    return {"prob": np.concatenate(probs), "a": np.concatenate(a_all), "z": np.concatenate(z_all)}


def evaluate(
    probs_val: np.ndarray,
    labels_val: np.ndarray,
    probs_test: np.ndarray,
    labels_test: np.ndarray,
    au_names: list[str],
) -> dict[str, Any]:
    """Per-AU thresholds tuned for F1 on validation, then test metrics
    (:func:`training.common.metrics.evaluate_occurrence`) with those thresholds."""
    th = tune_thresholds(labels_val, probs_val)
    res = evaluate_occurrence(labels_test, probs_test, th, au_names)
    res["thresholds"] = th.tolist()
    return res


def split_arrays(faces: VideoFaces) -> dict[int, VideoFaces]:
    """The frames of each split."""
    return {s: faces.subset(np.flatnonzero(faces.split == s)) for s in (TRAIN, VAL, TEST)}
