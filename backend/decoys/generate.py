"""Decoy images by optimisation (Decoys, Eq. 2 and 6-8), batched over patch masks, and by blurring.

A decoy x~ of x differs from x only inside a patch mask M, stays in [0, 1], and keeps the layer-l
representation within epsilon: ||F_l(x~) - F_l(x)||_inf <= epsilon. The optimisation maximises the
one-sided deviation ||((x~ - x) s)^+||_1 with the constraint as a penalty (Eq. 8, the Carlini-Wagner
tau trick), x~ = (tanh(x^) + 1) / 2 (change of variable), and projects x^ back onto the mask after
every step. c starts small and is doubled for the masks where no feasible change was found.

Iterations follow the paper: tau starts at epsilon (the paper: 1, below its epsilon of 200) and shrinks
by 0.95 after every step whose penalty is zero; a decoy stops after its first step with a non-zero
penalty, usually after 3-5 steps. `steps` only caps that. All masks (and both signs) are optimised as
one batch, and only the decoys still running are pushed through the layers, so a decoy costs a few
forward + backward passes of the layers up to l. Kept honest: the decoy returned is the best *feasible*
iterate of its trajectory (the paper returns the last one and checks it); `paper_stop=False` instead
runs the full `steps` budget (about 10x the cost; on the fooled shapes CNN it gave the same
closer-to-baseline count, see tests/detect/test_decoys_fooled.py).
The input itself is a trivially valid decoy; a mask where no feasible change was found yields x.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from backend.decoys.features import layer_output
from backend.decoys.masks import patch_masks
from backend.decoys.windows import Windows, plan_windows, receptive_field
from backend.errors import InvalidConfig, InvalidImage
from backend.progress import ProgressFn, report

Normalize = Callable[[torch.Tensor], torch.Tensor]
_EDGE = 1e-4  # keep arctanh finite for pixels at exactly 0 or 1


@dataclass(frozen=True)
class DecoySettings:
    """Table A2 of the paper for VGG16 is layer 3, c 1e4, epsilon 200, patch 3, stride 1, tau 1.

    Feature scales differ per model, so `epsilon=None` means `relative_epsilon * max |F_l(x)|`.
    """

    layer: str | int | None = None
    patch: int = 8
    stride: int = 8
    epsilon: float | None = None
    relative_epsilon: float = 0.1
    c: float = 10.0
    tau: float | None = None  # initial tau of Eq. 8; None = epsilon (the paper: 1, below its eps 200)
    tau_decay: float = 0.95
    steps: int = 40
    lr: float = 0.1
    max_doublings: int = 4
    batch_size: int = 256  # masks optimised together (all of a 64 px image at patch 8, both signs)
    signs: tuple[int, ...] = (1, -1)
    paper_stop: bool = True  # stop each decoy at its first non-zero penalty (False: run all `steps`)

    def validate(self) -> DecoySettings:
        problems = []
        if self.epsilon is not None and self.epsilon <= 0:
            problems.append("epsilon must be > 0")
        if not 0 < self.relative_epsilon:
            problems.append("relative_epsilon must be > 0")
        if self.c <= 0 or (self.tau is not None and self.tau <= 0) or not 0 < self.tau_decay < 1:
            problems.append("c and tau must be > 0 and tau_decay in (0, 1)")
        if self.steps < 1 or self.lr <= 0 or self.batch_size < 1 or self.max_doublings < 0:
            problems.append("steps, lr and batch_size must be positive, max_doublings >= 0")
        if not self.signs or any(s not in (1, -1) for s in self.signs):
            problems.append("signs must be a non-empty subset of (1, -1)")
        if problems:
            raise InvalidConfig("Invalid decoy settings: " + "; ".join(problems) + ".")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DecoySet:
    """Decoys of one image: `decoys` (n, C, H, W) in [0, 1] with their masks, signs and the check."""

    decoys: torch.Tensor
    masks: torch.Tensor  # (n, H, W) bool
    signs: torch.Tensor  # (n,) +1 / -1
    linf: torch.Tensor  # (n,) ||F_l(x~) - F_l(x)||_inf
    epsilon: float
    c_used: torch.Tensor  # (n,) the c of the round that produced the decoy
    deviation: torch.Tensor  # (n,) ||((x~ - x) s)^+||_1, the maximised objective
    iterations: int = 0  # decoy-iterations spent (one = forward + backward of one decoy up to layer l)

    @property
    def trivial(self) -> int:
        """How many decoys equal the input (no feasible change found)."""
        return int((self.deviation == 0).sum())


def _check_image(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 3:
        raise InvalidImage(f"Decoys are built for one image (C, H, W); got shape {tuple(x.shape)}.")
    if float(x.min()) < -1e-6 or float(x.max()) > 1 + 1e-6:
        raise InvalidImage("Decoys need the image in [0, 1] (before normalisation); denormalise it first.")
    return x.clamp(0, 1)


def _epsilon(settings: DecoySettings, f0: torch.Tensor) -> float:
    """The absolute tolerance: as given, or relative to the largest activation of x at the layer."""
    if settings.epsilon is not None:
        return float(settings.epsilon)
    return max(settings.relative_epsilon * float(f0.abs().max()), 1e-12)


def feature_distance(
    model: nn.Module, x: torch.Tensor, decoys: torch.Tensor, layer, normalize: Normalize
) -> torch.Tensor:
    """||F_l(x~_i) - F_l(x)||_inf for every decoy: the validation of Eq. 2's constraint, recomputed."""
    with torch.no_grad(), layer_output(model, layer) as feats:
        f0 = feats(normalize(x[None]))
        return torch.cat(
            [(feats(normalize(chunk)) - f0).abs().flatten(1).amax(1) for chunk in decoys.split(64)]
        )


def _optimise_chunk(feats, normalize, xb, masks, signs, f0, eps, c, s: DecoySettings):
    """One round of Eq. 8 for a batch of masks over base images `xb` (n, C, h, w) (the input, or each
    mask's window of it) with their layer-l features `f0`: the best feasible decoys, their deviation
    and distance, and how many decoy-iterations (forward + backward of one decoy to layer l) were spent.

    Only the decoys still running are pushed through the layers, so the batch gets cheaper as
    decoys finish (under the paper's stopping rule most finish after a few iterations).
    """
    n = masks.shape[0]
    m = masks[:, None].expand(-1, xb.shape[1], -1, -1)
    sgn = signs.view(-1, 1, 1, 1).to(xb.dtype)
    xhat0 = torch.atanh(2 * xb.clamp(_EDGE, 1 - _EDGE) - 1)
    # ReLU has zero gradient at 0: start a hair inside the mask in the direction s so the L1 term pulls.
    xhat = torch.where(m, xhat0 + 1e-2 * sgn, xhat0).clone().requires_grad_(True)
    opt = torch.optim.Adam([xhat], lr=s.lr)
    device = xb.device
    tau = torch.full((n,), eps if s.tau is None else s.tau, device=device)
    best = xb.clone()
    best_dev = torch.zeros(n, device=device)
    best_linf = torch.zeros(n, device=device)
    active = torch.ones(n, dtype=torch.bool, device=device)  # still taking steps
    evaluate = active.clone()  # to be evaluated this iteration: the active ones and the just-stopped
    spent = 0
    for step in range(s.steps + 1):
        idx = evaluate.nonzero().flatten()
        if idx.numel() == 0:
            break
        spent += idx.numel()
        mi, xbi, si = m[idx], xb[idx], sgn[idx]
        xt = torch.where(mi, (torch.tanh(xhat[idx]) + 1) / 2, xbi)
        diff = (feats(normalize(xt)) - f0[idx if f0.shape[0] > 1 else slice(None)]).abs().flatten(1)
        linf = diff.detach().amax(1)
        dev = F.relu((xt - xbi) * si).flatten(1).sum(1)
        better = (linf <= eps) & (dev.detach() > best_dev[idx])
        keep = idx[better]
        best[keep] = xt.detach()[better]
        best_dev[keep] = dev.detach()[better]
        best_linf[keep] = linf[better]
        evaluate = active.clone()
        if step == s.steps or not active.any():
            break
        penalty = F.relu(diff - tau[idx, None]).pow(2).sum(1)
        loss = (-dev + c * penalty).sum()
        (grad,) = torch.autograd.grad(loss, xhat)
        xhat.grad = grad
        before = xhat.detach().clone()
        opt.step()
        with torch.no_grad():
            xhat.copy_(torch.where(m, xhat, xhat0))  # projection onto the mask
            xhat.copy_(torch.where(active.view(-1, 1, 1, 1), xhat, before))  # finished decoys stay put
        fits = penalty.detach() == 0
        tau[idx] = torch.where(fits, tau[idx] * s.tau_decay, tau[idx])
        if s.paper_stop:  # the paper's rule: a decoy ends once its penalty is non-zero (this step is
            active[idx[~fits]] = False  # its last; the result is evaluated in the next iteration)
    return best, best_dev, best_linf, spent


def _rounds(feats, normalize, xb, masks, signs, f0, eps, settings: DecoySettings):
    """ "If it fails, double c and repeat": a mask fails when no feasible change was found (the best
    feasible iterate is still x itself), e.g. because a small c let every iterate overshoot epsilon."""
    n, device = masks.shape[0], xb.device
    best = xb.clone()
    dev = torch.zeros(n, device=device)
    linf = torch.zeros(n, device=device)
    c_used = torch.full((n,), settings.c, device=device)
    todo = torch.ones(n, dtype=torch.bool, device=device)
    c = settings.c
    spent = 0
    for _ in range(settings.max_doublings + 1):
        sel = todo.nonzero().flatten()
        f0_sel = f0[sel] if f0.shape[0] > 1 else f0
        b, d, lf, k = _optimise_chunk(
            feats, normalize, xb[sel], masks[sel], signs[sel], f0_sel, eps, c, settings
        )
        spent += k
        gain = d > dev[sel]
        best[sel[gain]], dev[sel[gain]], linf[sel[gain]] = b[gain], d[gain], lf[gain]
        c_used[sel[gain]] = c
        todo = torch.zeros_like(todo)
        todo[sel[dev[sel] == 0]] = True
        if not todo.any():
            break
        c *= 2
    return best, dev, linf, c_used, spent


def optimise_decoys(
    model: nn.Module,
    x: torch.Tensor,
    normalize: Normalize,
    settings: DecoySettings = DecoySettings(),
    masks: torch.Tensor | None = None,
    progress: ProgressFn | None = None,
) -> DecoySet:
    """Decoys of `x` (C, H, W) in [0, 1] for every patch mask and sign in `settings` (Eq. 2, 6-8)."""
    settings = settings.validate()
    x = _check_image(x)
    if masks is None:
        masks = patch_masks(x.shape[1], x.shape[2], settings.patch, settings.stride)
    masks = masks.to(x.device)
    all_masks = masks.repeat(len(settings.signs), 1, 1)
    all_signs = torch.tensor(settings.signs, device=x.device).repeat_interleave(masks.shape[0])
    out, devs, cs, spent = [], [], [], 0
    windows = plan_windows(masks, receptive_field(model, settings.layer))
    if windows is not None:
        windows = Windows(
            windows.top * len(settings.signs), windows.left * len(settings.signs), windows.h, windows.w
        )
    with layer_output(model, settings.layer) as feats:
        with torch.no_grad():
            f0 = feats(normalize(x[None]))
        eps = _epsilon(settings, f0)
        chunks = torch.arange(all_masks.shape[0], device=x.device).split(settings.batch_size)
        for i, idx in enumerate(chunks):
            if windows is None:
                xb, mk, f0_b = x[None].expand(len(idx), -1, -1, -1), all_masks[idx], f0
            else:
                xb, mk = windows.crop(x, idx), windows.crop_masks(all_masks, idx)
                with torch.no_grad():
                    f0_b = feats(normalize(xb))
            best, dev, _, c_used, k = _rounds(feats, normalize, xb, mk, all_signs[idx], f0_b, eps, settings)
            spent += k
            out.append(best if windows is None else windows.paste(x, best, idx))
            devs.append(dev)
            cs.append(c_used)
            report(progress, i + 1, len(chunks))
    decoys, deviation = torch.cat(out), torch.cat(devs)
    # the constraint, checked on the full images (also the guarantee behind the windows)
    linf = feature_distance(model, x, decoys, settings.layer, normalize)
    broken = linf > eps * (1 + 1e-5)
    if broken.any():  # should not happen; a decoy that breaks it falls back to x (trivially valid)
        decoys[broken], deviation[broken], linf[broken] = x, 0.0, 0.0
    return DecoySet(
        decoys=decoys,
        masks=all_masks,
        signs=all_signs,
        linf=linf,
        epsilon=float(eps),
        c_used=torch.cat(cs),
        deviation=deviation,
        iterations=spent,
    )


def blur_decoys(
    model: nn.Module,
    x: torch.Tensor,
    normalize: Normalize,
    settings: DecoySettings = DecoySettings(),
    sigma: float = 2.0,
    masks: torch.Tensor | None = None,
) -> DecoySet:
    """The cheap alternative (Decoys §4.1, A11): each masked patch replaced by a blurred copy of x.

    Blurring does not respect the layer-l constraint; `linf` reports by how much it breaks it.
    """
    from torchvision.transforms.functional import gaussian_blur

    settings = settings.validate()
    x = _check_image(x)
    if sigma <= 0:
        raise InvalidConfig(f"Blur sigma must be > 0 (got {sigma}).")
    if masks is None:
        masks = patch_masks(x.shape[1], x.shape[2], settings.patch, settings.stride)
    masks = masks.to(x.device)
    kernel = 2 * int(3 * sigma) + 1
    blurred = gaussian_blur(x[None], [kernel, kernel], [sigma, sigma])[0]
    decoys = torch.where(masks[:, None], blurred[None], x[None])
    linf = feature_distance(model, x, decoys, settings.layer, normalize)
    with torch.no_grad(), layer_output(model, settings.layer) as feats:
        f0 = feats(normalize(x[None]))
    eps = _epsilon(settings, f0)
    n = decoys.shape[0]
    return DecoySet(
        decoys=decoys,
        masks=masks,
        signs=torch.zeros(n, dtype=torch.long, device=x.device),
        linf=linf,
        epsilon=float(eps),
        c_used=torch.zeros(n, device=x.device),
        deviation=(decoys - x[None]).abs().flatten(1).sum(1),
    )
