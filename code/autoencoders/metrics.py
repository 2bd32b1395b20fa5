"""Numbers computed from trained models: likelihoods in bits, image quality,
codebook usage, and how close a linear autoencoder comes to PCA.

Functions take tensors and return tensors or floats; none trains anything.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .data import unit_floats


# --------------------------------------------------------- nats and bits
def nats_to_bits(nats: torch.Tensor | float) -> torch.Tensor | float:
    """A log-likelihood (or its negative) in nats, converted to bits."""
    return nats / math.log(2)


def bits_per_dim(nll_nats: torch.Tensor | float, dims: int) -> torch.Tensor | float:
    """A negative log-likelihood of one example, in nats, as bits per
    dimension (per pixel and colour channel, or per code of a code grid)."""
    return nll_nats / (dims * math.log(2))


# -------------------------------------------------------- codebook usage
def code_counts(codes: torch.Tensor, num_codes: int) -> torch.Tensor:
    """How often each of the ``num_codes`` codes occurs in ``codes`` (any
    shape of int64 indices): a tensor of K counts."""
    return torch.bincount(codes.reshape(-1), minlength=num_codes)


def codebook_perplexity(codes: torch.Tensor, num_codes: int) -> torch.Tensor:
    """exp(entropy) of the codes' empirical frequencies: the number of
    equally used codes that would give the same entropy. It is K when every
    code is used equally often and 1 when a single code takes everything."""
    p = code_counts(codes, num_codes).float()
    p = p / p.sum()
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return entropy.exp()


def dead_codes(codes: torch.Tensor, num_codes: int) -> torch.Tensor:
    """The number of codes that never occur in ``codes``."""
    return (code_counts(codes, num_codes) == 0).sum()


# ------------------------------------------------------- reconstructions
def psnr(mse: torch.Tensor | float, peak: float = 1.0) -> torch.Tensor | float:
    """Peak signal-to-noise ratio in dB, 10 log10(peak^2 / mse), for images
    whose pixels span [0, peak]. Higher is better; each halving of the mean
    squared error adds about 3 dB."""
    if isinstance(mse, torch.Tensor):
        return 10 * torch.log10(peak ** 2 / mse)
    return 10 * math.log10(peak ** 2 / mse)


def _batches(images: torch.Tensor, batch_size: int, device):
    """``images`` (uint8, or floats in [0, 1]) as float32 batches on ``device``."""
    for start in range(0, len(images), batch_size):
        yield unit_floats(images[start:start + batch_size].to(device))


def _to_cpu(t: torch.Tensor) -> torch.Tensor:
    return t.float().cpu() if t.is_floating_point() else t.cpu()


@torch.inference_mode()
def apply_in_batches(model: torch.nn.Module, fn, images: torch.Tensor,
                     batch_size: int = 1000):
    """``fn(x)`` for every batch ``x`` of ``images``, with ``model`` in eval
    mode and the batches (float32 in [0, 1]) on its device; the outputs (a
    tensor or a tuple of tensors) concatenated on the CPU."""
    device = next(model.parameters()).device
    model.eval()
    parts = [fn(x) for x in _batches(images, batch_size, device)]
    if isinstance(parts[0], tuple):
        return tuple(torch.cat([_to_cpu(t) for t in column]) for column in zip(*parts))
    return torch.cat([_to_cpu(t) for t in parts])


def reconstruct(model: torch.nn.Module, x: torch.Tensor,
                batch_size: int = 1000) -> torch.Tensor:
    """``model(x)`` in eval mode and in batches, on the model's device; ``x``
    as uint8 images or floats in [0, 1]. Returns floats on the CPU."""
    return apply_in_batches(model, model, x, batch_size)


# ------------------------------------------------- linear AE versus PCA
def _flat(x: torch.Tensor) -> np.ndarray:
    """Images (uint8, or floats in [0, 1]) as float64 rows of a data matrix."""
    return unit_floats(x).flatten(1).cpu().numpy().astype(np.float64)


def covariance_eigenvalues(images: torch.Tensor) -> np.ndarray:
    """The eigenvalues of the data's covariance matrix, largest first (the
    variances PCA's components capture, one per component)."""
    x = _flat(images)
    x -= x.mean(axis=0)
    return np.linalg.eigvalsh(x.T @ x / len(x))[::-1]


def pca_mse(train: torch.Tensor, test: torch.Tensor, k: int) -> float:
    """Test mean squared error per pixel of PCA with ``k`` components fitted
    on ``train``: the lowest error any linear autoencoder with a ``k``-number
    code can reach on data like ``train``."""
    from sklearn.decomposition import PCA

    x_train, x_test = _flat(train), _flat(test)
    pca = PCA(n_components=k).fit(x_train)
    return float(((pca.inverse_transform(pca.transform(x_test)) - x_test) ** 2).mean())


def principal_angles(a, b) -> np.ndarray:
    """The principal angles, in degrees and ascending, between the column
    spaces of ``a`` (d x k) and ``b`` (d x l): 0 where the spaces share a
    direction, 90 where a direction of one is orthogonal to the other."""
    from scipy.linalg import subspace_angles

    a, b = (np.asarray(m.detach().cpu() if isinstance(m, torch.Tensor) else m,
                       dtype=np.float64) for m in (a, b))
    return np.sort(np.degrees(subspace_angles(a, b)))


@dataclass
class PCAComparison:
    """A linear autoencoder next to PCA with as many components as its code."""

    k: int
    angles: np.ndarray         # principal angles decoder columns vs PCA, degrees
    random_angles: np.ndarray  # the same for a random k-dim subspace (the scale)
    ae_mse: float                # test mean squared error per pixel
    pca_mse: float
    ae_reconstruction: torch.Tensor   # test reconstructions, shaped like the input
    pca_reconstruction: torch.Tensor

    @property
    def relative_mse_gap(self) -> float:
        """(AE MSE - PCA MSE) / PCA MSE: 0 when the AE is as good as PCA."""
        return (self.ae_mse - self.pca_mse) / self.pca_mse


def compare_with_pca(model: torch.nn.Module, train: torch.Tensor,
                     test: torch.Tensor, seed: int = 0) -> PCAComparison:
    """Fit PCA (scikit-learn) on ``train`` with as many components as the
    linear autoencoder ``model`` has code numbers, and compare the two: the
    principal angles between the decoder's column space and the PCA
    components, and both test reconstruction errors. ``train``/``test`` are
    images (uint8 or floats in [0, 1])."""
    from sklearn.decomposition import PCA

    weight = model.decoder.net.weight  # (d, k): g(z) = W z + b
    k = weight.shape[1]
    x_train, x_test = _flat(train), _flat(test)
    pca = PCA(n_components=k, random_state=seed).fit(x_train)
    pca_rec = pca.inverse_transform(pca.transform(x_test))
    ae_rec = reconstruct(model, test)
    rng = np.random.default_rng(seed)
    return PCAComparison(
        k=k,
        angles=principal_angles(weight, pca.components_.T),
        random_angles=principal_angles(rng.standard_normal(weight.shape),
                                       pca.components_.T),
        ae_mse=float(((ae_rec.flatten(1).double().numpy() - x_test) ** 2).mean()),
        pca_mse=float(((pca_rec - x_test) ** 2).mean()),
        ae_reconstruction=ae_rec,
        pca_reconstruction=torch.from_numpy(pca_rec).float().reshape(ae_rec.shape),
    )


# ------------------------------------------------- latent codes (VAE, AE)
def encode(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1000):
    """``model.encode(x)`` in eval mode and in batches, on the model's device;
    ``x`` as uint8 images or floats in [0, 1]. Returns CPU floats: the codes
    (N, k) of an autoencoder, or the pair (mu, logvar) of a VAE."""
    return apply_in_batches(model, model.encode, x, batch_size)


def unit_activity(mu: torch.Tensor) -> torch.Tensor:
    """The activity of each latent unit u, Var_x( E_q[z_u | x] ): how much the
    posterior mean of z_u moves from one input to the next (``mu``: posterior
    means, one row per input). A unit whose posterior is the prior for every
    input has activity 0."""
    return mu.double().var(dim=0, unbiased=True)


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """The number of latent units with activity (:func:`unit_activity`) above
    ``threshold``, the count of Burda, Grosse and Salakhutdinov (2016). The
    prior's variance is 1, so 0.01 means the posterior mean moves by a tenth
    of the prior's standard deviation across inputs."""
    return int((unit_activity(mu) > threshold).sum())


def kl_per_unit(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( q(z_u|x) || N(0, 1) ) of each latent unit u, averaged over the
    inputs (rows): the nats each unit spends; they sum to the mean KL."""
    mu, logvar = mu.double(), logvar.double()
    return (0.5 * (mu ** 2 + logvar.exp() - 1.0 - logvar)).mean(dim=0)


# ------------------------------------------------- samples and their quality
@torch.inference_mode()
def prior_samples(model: torch.nn.Module, n: int, latent_dim: int, *, seed: int = 0,
                  mean: torch.Tensor | None = None,
                  cov: torch.Tensor | None = None) -> torch.Tensor:
    """Decode ``n`` codes drawn from N(0, I) (or from N(mean, cov) when given)
    with ``model.decode``: samples of a VAE, or what an autoencoder's decoder
    makes of the same draws. Returns CPU floats."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, latent_dim, generator=gen, dtype=torch.float64)
    if cov is not None:
        z = z @ torch.linalg.cholesky(torch.as_tensor(cov, dtype=torch.float64)).T
    if mean is not None:
        z = z + torch.as_tensor(mean, dtype=torch.float64)
    return apply_in_batches(model, model.decode, z)


def gaussian_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean vector and covariance matrix (float64) of ``features`` (rows =
    examples): the Gaussian that a Fréchet distance compares."""
    f = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor)
                   else features, dtype=np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """The Fréchet (2-Wasserstein) distance, squared, between N(mu1, cov1)
    and N(mu2, cov2):

        ||mu1 - mu2||^2 + tr( cov1 + cov2 - 2 (cov1 cov2)^{1/2} ),

    with the matrix square root from ``scipy.linalg.sqrtm``. This is the
    formula of the FID of Heusel et al. (2017), here applied to whichever
    features the caller provides."""
    import warnings

    from scipy.linalg import LinAlgWarning, sqrtm

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", LinAlgWarning)
            root = sqrtm(cov1 @ cov2)
        if not np.all(np.isfinite(root)):
            raise LinAlgWarning("non-finite square root")
    except LinAlgWarning:
        # a singular product (e.g. a feature that never varies): add a tiny
        # multiple of the identity to both covariances, as FID code does
        eps = 1e-6 * max(np.trace(cov1), np.trace(cov2), 1.0) / len(cov1) * np.eye(len(cov1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LinAlgWarning)
            root = sqrtm((cov1 + eps) @ (cov2 + eps))
    # roundoff can leave tiny imaginary parts; large ones mean a real problem
    if np.iscomplexobj(root):
        if not np.allclose(root.imag, 0, atol=1e-3 * max(1.0, np.abs(root.real).max())):
            raise ValueError("sqrtm(cov1 @ cov2) has a large imaginary part; "
                             "are both covariance matrices positive semi-definite?")
        root = root.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(root))


def feature_frechet_distance(a, b) -> float:
    """:func:`frechet_distance` between Gaussians fitted to two sets of
    feature vectors (rows), e.g. classifier features of samples and of real
    images."""
    return frechet_distance(*gaussian_statistics(a), *gaussian_statistics(b))


def classifier_outputs(classifier: torch.nn.Module, images: torch.Tensor,
                       batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """The class logits and the penultimate features
    (``classifier.features``) of ``images`` (uint8 or floats in [0, 1]), both
    as CPU float tensors."""
    return apply_in_batches(classifier, classifier.logits_and_features, images, batch_size)


def classifier_scores(logits: torch.Tensor) -> dict[str, float]:
    """How a classifier judges a set of images, from its ``logits``:

    * ``confidence``: mean probability of the predicted class;
    * ``entropy``: mean entropy of the predicted class distribution, in nats
      (0 when the classifier is sure, log 10 for ten classes when it has no idea);
    * ``class_entropy``: entropy of the average predicted distribution (log 10
      when all classes are equally represented);
    * ``classifier_score``: exp(class_entropy - entropy), the Inception-score
      formula of Salimans et al. (2016) with this classifier: high when each
      image is clearly one class and the classes are varied (at most 10).
    """
    logp = torch.log_softmax(logits.double(), dim=1)
    p = logp.exp()
    entropy = -(p * logp).sum(dim=1)
    marginal = p.mean(dim=0)
    class_entropy = -(marginal * torch.log(marginal.clamp_min(1e-300))).sum()
    return {"confidence": float(p.max(dim=1).values.mean()),
            "entropy": float(entropy.mean()),
            "class_entropy": float(class_entropy),
            "classifier_score": float(torch.exp(class_entropy - entropy.mean()))}


# ------------------------------------------------------------------ VQ-VAE
def code_grids(vqvae: torch.nn.Module, images: torch.Tensor,
               batch_size: int = 1000) -> torch.Tensor:
    """The code-index grids (N, h, w) a VQ-VAE assigns to ``images``, on the CPU."""
    return apply_in_batches(vqvae, vqvae.codes, images, batch_size)


def codebook_usage(codes: torch.Tensor, num_codes: int) -> dict:
    """Counts, perplexity and dead codes of a whole set of code grids."""
    return {"counts": code_counts(codes, num_codes),
            "perplexity": float(codebook_perplexity(codes, num_codes)),
            "dead_codes": int(dead_codes(codes, num_codes))}


@torch.inference_mode()
def reconstruction_sigma(model: torch.nn.Module, images: torch.Tensor,
                         batch_size: int = 1000) -> float:
    """sqrt(mean squared error) of ``model``'s reconstructions of ``images``:
    the maximum-likelihood standard deviation of a Gaussian decoder
    N(x_hat, sigma^2 I) with one sigma for every pixel."""
    device = next(model.parameters()).device
    model.eval()
    sse, count = 0.0, 0
    for x in _batches(images, batch_size, device):
        sse += float((model(x) - x).pow(2).sum())
        count += x.numel()
    return math.sqrt(sse / count)


@torch.inference_mode()
def vqvae_bits_per_dim(vqvae: torch.nn.Module, prior: torch.nn.Module,
                       images: torch.Tensor, sigma: float,
                       batch_size: int = 500) -> dict:
    """An upper bound on -log2 p(x) per dimension for a VQ-VAE with a prior.

    The encoder is deterministic (q(k|x) puts all its mass on the code grid
    k(x)), so the negative ELBO is -log p(x | k(x)) - log p(k(x)): the
    decoder's term with a discretized Gaussian N(x_hat, sigma^2) over the 256
    grey levels (see ``losses.discretized_gaussian_nll``), plus the prior's
    negative log-likelihood of the code grid. Returns the two terms in nats
    per image, the bound in bits per dimension and the prior's bits per code.
    """
    from .losses import discretized_gaussian_nll

    device = next(vqvae.parameters()).device
    vqvae.eval(), prior.eval()
    decoder_nats = prior_nats = 0.0
    for x in _batches(images, batch_size, device):
        codes = vqvae.codes(x)
        x_hat = vqvae.decode_codes(codes)
        decoder_nats += float(discretized_gaussian_nll(x_hat, x, sigma).sum())
        prior_nats += float(prior.nll(codes).sum())
    n, dims = len(images), images[0].numel()
    grid = vqvae.grid[0] * vqvae.grid[1]
    decoder_nats, prior_nats = decoder_nats / n, prior_nats / n
    return {"decoder_nats": decoder_nats, "prior_nats": prior_nats,
            "bits_per_dim": bits_per_dim(decoder_nats + prior_nats, dims),
            "decoder_bits_per_dim": bits_per_dim(decoder_nats, dims),
            "prior_bits_per_code": bits_per_dim(prior_nats, grid)}


def edge_energy(images: torch.Tensor) -> float:
    """Mean squared difference between horizontally and vertically adjacent
    pixels of images (floats in [0, 1] or uint8), summed over the two
    directions: the energy in edges and fine texture. Blurring an image
    lowers it; the ratio for a reconstruction and its original says how much
    of the original's detail survived."""
    x = unit_floats(images)
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    return float(dx.pow(2).mean() + dy.pow(2).mean())


# ------------------------------------- VAE likelihood bounds (IWAE), codes
def binarize(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A fixed stochastic binarisation of grey-level images: each pixel is 1
    with probability equal to its intensity (the usual "dynamically
    binarised MNIST" test set, with a seeded draw so the number repeats)."""
    x = unit_floats(images)
    gen = torch.Generator().manual_seed(seed)
    return torch.bernoulli(x.cpu(), generator=gen)


@torch.inference_mode()
def importance_log_weights(model: torch.nn.Module, x: torch.Tensor, k: int,
                           target: torch.Tensor | None = None,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """log w_i = log p(target|z_i) + log p(z_i) - log q(z_i|x) for k draws
    z_i ~ q(z|x) per image: a (k, N) tensor. ``model`` is a VAE (``encode``
    giving mean and log-variance, ``decoder`` giving logits and
    ``log_likelihood(logits, x)``); ``target`` (default ``x``) is what the
    decoder's likelihood is evaluated on, e.g. a binarised copy of ``x``."""
    target = x if target is None else target
    mu, logvar = model.encode(x)
    eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
    z = mu + torch.exp(0.5 * logvar) * eps                      # (k, N, d)
    log2pi = math.log(2 * math.pi)
    log_q = -0.5 * (eps ** 2 + logvar + log2pi).sum(dim=-1)     # log N(z; mu, sigma^2)
    log_prior = -0.5 * (z ** 2 + log2pi).sum(dim=-1)            # log N(z; 0, I)
    logits = model.decoder(z.flatten(0, 1))
    repeated = target.unsqueeze(0).expand(k, *target.shape).flatten(0, 1)
    log_lik = model.log_likelihood(logits, repeated).view(k, -1)
    return log_lik + log_prior - log_q


@torch.inference_mode()
def iwae_nll(model: torch.nn.Module, images: torch.Tensor, ks=(1, 10, 100), *,
             target: torch.Tensor | None = None, seed: int = 0,
             max_decodes: int = 5000) -> dict[int, torch.Tensor]:
    """Importance-weighted estimates of -log p(x) per image (Burda et al.,
    2016), in nats, for each number of samples k in ``ks``:

        -log (1/k) sum_i w_i,   w_i = p(x, z_i) / q(z_i | x),  z_i ~ q(z|x).

    k = 1 is the negative ELBO; each larger k gives a bound that is, in
    expectation, tighter (lower) and tends to -log p(x). The estimates for
    the different k reuse the first k of the same max(ks) draws. Returns
    {k: tensor of N values}. ``images`` are uint8 or floats in [0, 1] and go
    to the encoder; ``target`` (default: the images) is scored."""
    device = next(model.parameters()).device
    model.eval()
    x = unit_floats(images)
    t = x if target is None else target.float()
    k_max = max(ks)
    chunk = max(1, max_decodes // k_max)
    gen = torch.Generator(device=device).manual_seed(seed)
    out = {k: [] for k in ks}
    for start in range(0, len(x), chunk):
        log_w = importance_log_weights(model, x[start:start + chunk].to(device), k_max,
                                       t[start:start + chunk].to(device), generator=gen)
        for k in ks:
            out[k].append(-(torch.logsumexp(log_w[:k], dim=0) - math.log(k)).double().cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def accuracy(classifier: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 1000) -> float:
    """The fraction of ``images`` whose predicted class (argmax of the
    classifier's logits) equals the label."""
    logits, _ = classifier_outputs(classifier, images, batch_size)
    return float((logits.argmax(dim=1) == labels.cpu()).double().mean())


@dataclass
class CodeLabelAgreement:
    """How a discrete code (cluster index) lines up with the labels."""

    table: np.ndarray            # (codes, classes) counts on the fitting set
    majority_map: np.ndarray     # code -> the label most of its images carry
    one_to_one_map: np.ndarray   # code -> label, a one-to-one assignment (Hungarian)
    majority_accuracy: float     # on the evaluation set
    one_to_one_accuracy: float
    used_codes: int              # codes taken by at least one fitting image


def code_label_agreement(fit_codes, fit_labels, eval_codes, eval_labels,
                         num_codes: int, num_classes: int = 10) -> CodeLabelAgreement:
    """Map each code value to a label using the fitting set (e.g. training
    images) and score the map on the evaluation set (e.g. the test split):
    the majority map (each code -> its most frequent label; several codes may
    share a label) and the best one-to-one map (scipy's Hungarian algorithm on
    the count table; the clustering accuracy of the literature)."""
    from scipy.optimize import linear_sum_assignment

    fc, fl, ec, el = (np.asarray(t.cpu() if isinstance(t, torch.Tensor) else t)
                      for t in (fit_codes, fit_labels, eval_codes, eval_labels))
    table = np.zeros((num_codes, num_classes), dtype=np.int64)
    np.add.at(table, (fc, fl), 1)
    majority = table.argmax(axis=1)
    rows, cols = linear_sum_assignment(-table)
    one_to_one = np.full(num_codes, -1, dtype=np.int64)
    one_to_one[rows] = cols
    return CodeLabelAgreement(
        table=table, majority_map=majority, one_to_one_map=one_to_one,
        majority_accuracy=float((majority[ec] == el).mean()),
        one_to_one_accuracy=float((one_to_one[ec] == el).mean()),
        used_codes=int((table.sum(axis=1) > 0).sum()))
