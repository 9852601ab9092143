"""Statistics of a reader study (visual Turing test): can readers tell real from synthetic?

"Real" is the positive class throughout. For each reader and for all readings pooled:

* **accuracy** (correct / answered) with the exact binomial (Clopper-Pearson) 95 % CI,
  ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``, and the two-sided exact binomial
  test against 0.5 (chance);
* **sensitivity** (real images called real) and **specificity** (synthetic images called
  synthetic), each with its exact CI;
* **AUC** from the confidence ratings: answer and confidence make one 10-level score
  (real/5 = 10, real/4 = 9 ... real/1 = 6, synthetic/1 = 5 ... synthetic/5 = 1); the AUC is the
  Mann-Whitney statistic P(score of a real image > score of a synthetic one) + 0.5 P(tie), with
  the **DeLong** standard error and a normal 95 % CI clipped to [0, 1] (when all scores are
  separated the DeLong SE is 0 and the CI collapses to the point);
* **Cohen's kappa** of the answers (real/synthetic) for every reader pair, on the images *both*
  read; pairs without common images get no kappa (n_common = 0, kappa NaN, and the report says
  so); a pair that gave one and the same answer to all common images has an undefined kappa
  (expected agreement 1), also NaN;
* **Fleiss' kappa** over the images rated by the same number m >= 2 of readers: the m with most
  images is used (ties: the larger m) and the excluded images are counted;
* per **model version** (when synthetic images of several versions were shown): specificity on
  that version's images (how often it was caught; 1 - it is how often it fooled the readers) and
  the AUC of all real readings against that version's synthetic readings.

The pooled numbers treat every reading as independent, as published reader studies do; when
readers share images their readings are correlated and the pooled CIs are too narrow.
"""

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import stats

from ..errors import InputError
from .design import REAL, SYNTHETIC
from .session import ReaderSession
from .study import Study, load_key

POOLED = "pooled"
NAN = float("nan")


@dataclass(frozen=True)
class Reading:
    """One reader's (latest) answer to one image, joined with the key."""

    reader_id: str
    trial_index: int
    image_id: str
    truth: str
    answer: str
    confidence: int
    patient_id: str = ""
    model_version: Optional[str] = None
    response_time_s: Optional[float] = None

    @property
    def correct(self) -> bool:
        return self.answer == self.truth

    @property
    def score(self) -> int:
        return rating_score(self.answer, self.confidence)


def rating_score(answer: str, confidence: int) -> int:
    """The 10-level rating: real/5 -> 10 ... real/1 -> 6, synthetic/1 -> 5 ... synthetic/5 -> 1."""
    c = int(confidence)
    return 5 + c if answer == REAL else 6 - c


# --------------------------------------------------------------------------- building blocks


@dataclass(frozen=True)
class Proportion:
    """k of n, with the exact (Clopper-Pearson) CI and the two-sided exact test against ``p0``."""

    k: int
    n: int
    value: float
    ci_low: float
    ci_high: float
    p_value: float
    p0: float = 0.5


def proportion(k: int, n: int, p0: float = 0.5, confidence: float = 0.95) -> Proportion:
    """Exact binomial summary of k successes in n trials (NaN everywhere when n is 0)."""
    k, n = int(k), int(n)
    if n == 0:
        return Proportion(0, 0, NAN, NAN, NAN, NAN, p0)
    test = stats.binomtest(k, n, p0, alternative="two-sided")
    ci = test.proportion_ci(confidence_level=confidence, method="exact")
    return Proportion(k, n, k / n, float(ci.low), float(ci.high), float(test.pvalue), p0)


@dataclass(frozen=True)
class AUCResult:
    """Mann-Whitney AUC with its DeLong standard error and normal CI."""

    auc: float
    ci_low: float
    ci_high: float
    se: float
    n_pos: int
    n_neg: int
    method: str = "DeLong"


def auc_delong(pos_scores: Sequence[float], neg_scores: Sequence[float], confidence: float = 0.95) -> AUCResult:
    """AUC = P(pos > neg) + 0.5 P(pos = neg), DeLong variance (placement values), normal CI.

    NaN when a class is empty; the SE needs at least 2 of each class (NaN otherwise).
    """
    x = np.asarray(pos_scores, dtype=float).ravel()
    y = np.asarray(neg_scores, dtype=float).ravel()
    m, n = x.size, y.size
    if m == 0 or n == 0:
        return AUCResult(NAN, NAN, NAN, NAN, m, n)
    ys, xs = np.sort(y), np.sort(x)
    below = np.searchsorted(ys, x, side="left")
    tied = np.searchsorted(ys, x, side="right") - below
    v10 = (below + 0.5 * tied) / n  # per positive: share of negatives it beats
    above = m - np.searchsorted(xs, y, side="right")
    tied_y = np.searchsorted(xs, y, side="right") - np.searchsorted(xs, y, side="left")
    v01 = (above + 0.5 * tied_y) / m  # per negative: share of positives that beat it
    auc = float(v10.mean())
    if m < 2 or n < 2:
        return AUCResult(auc, NAN, NAN, NAN, m, n)
    se = math.sqrt(float(v10.var(ddof=1)) / m + float(v01.var(ddof=1)) / n)
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    return AUCResult(auc, max(0.0, auc - z * se), min(1.0, auc + z * se), se, m, n)


def roc_points(pos_scores: Sequence[float], neg_scores: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """Empirical ROC: (false positive rates, true positive rates) for 'score >= t' over every
    observed score t, from (0, 0) to (1, 1)."""
    x = np.asarray(pos_scores, dtype=float)
    y = np.asarray(neg_scores, dtype=float)
    if x.size == 0 or y.size == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    thresholds = np.unique(np.concatenate([x, y]))[::-1]
    tpr = [0.0] + [float(np.mean(x >= t)) for t in thresholds]
    fpr = [0.0] + [float(np.mean(y >= t)) for t in thresholds]
    return np.asarray(fpr), np.asarray(tpr)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa of two raters' labels on the same items (NaN when undefined)."""
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError("both raters need one label per common item")
    n = len(a)
    if n == 0:
        return NAN
    cats = sorted(set(a) | set(b))
    po = sum(1 for u, v in zip(a, b) if u == v) / n
    pe = sum((a.count(c) / n) * (b.count(c) / n) for c in cats)
    if pe >= 1.0 - 1e-12:
        return NAN
    return (po - pe) / (1.0 - pe)


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa of an (items x categories) count table, every row summing to the same m >= 2."""
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[0] == 0:
        return NAN
    m = counts.sum(axis=1)
    if np.any(m != m[0]) or m[0] < 2:
        raise ValueError("every item needs the same number (>= 2) of ratings")
    m = m[0]
    n_items = counts.shape[0]
    p_items = ((counts * counts).sum(axis=1) - m) / (m * (m - 1))
    p_bar = p_items.mean()
    p_cat = counts.sum(axis=0) / (n_items * m)
    pe = float((p_cat * p_cat).sum())
    if pe >= 1.0 - 1e-12:
        return NAN
    return float((p_bar - pe) / (1.0 - pe))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ReaderResult:
    reader_id: str  #: or "pooled"
    n: int
    n_real: int
    n_synthetic: int
    accuracy: Proportion
    sensitivity: Proportion
    specificity: Proportion
    auc: AUCResult
    median_response_time_s: float
    roc_fpr: Tuple[float, ...] = ()
    roc_tpr: Tuple[float, ...] = ()


@dataclass(frozen=True)
class KappaPair:
    reader_a: str
    reader_b: str
    n_common: int
    kappa: float
    observed_agreement: float


@dataclass(frozen=True)
class FleissResult:
    kappa: float
    n_images: int
    n_raters: int  #: m, the number of readers of each image used
    n_images_excluded: int  #: images read by another number of readers


@dataclass(frozen=True)
class VersionResult:
    model_version: str
    reader_id: str  #: or "pooled"
    n_synthetic: int
    detected: Proportion  #: synthetic images of this version called synthetic
    auc: AUCResult  #: all real readings vs this version's synthetic readings

    @property
    def fooled_rate(self) -> float:
        return 1.0 - self.detected.value


@dataclass
class StudyResults:
    study_id: str
    readers: List[ReaderResult]
    pooled: ReaderResult
    kappa_pairs: List[KappaPair]
    mean_cohen_kappa: float
    fleiss: Optional[FleissResult]
    versions: List[VersionResult]
    readings: List[Reading]
    progress: Dict[str, Tuple[int, int]] = field(default_factory=dict)  #: reader -> (answered, trials)

    @property
    def model_versions(self) -> List[str]:
        return sorted({v.model_version for v in self.versions})


def _reader_result(reader_id: str, readings: Sequence[Reading]) -> ReaderResult:
    real = [r for r in readings if r.truth == REAL]
    syn = [r for r in readings if r.truth == SYNTHETIC]
    correct = sum(1 for r in readings if r.correct)
    pos = [r.score for r in real]
    neg = [r.score for r in syn]
    times = [r.response_time_s for r in readings if r.response_time_s is not None]
    fpr, tpr = roc_points(pos, neg)
    return ReaderResult(
        reader_id,
        len(readings),
        len(real),
        len(syn),
        proportion(correct, len(readings)),
        proportion(sum(1 for r in real if r.answer == REAL), len(real)),
        proportion(sum(1 for r in syn if r.answer == SYNTHETIC), len(syn)),
        auc_delong(pos, neg),
        float(np.median(times)) if times else NAN,
        tuple(float(v) for v in fpr),
        tuple(float(v) for v in tpr),
    )


def _kappas(readings: Sequence[Reading], reader_ids: Sequence[str]) -> List[KappaPair]:
    by_reader: Dict[str, Dict[str, str]] = {rid: {} for rid in reader_ids}
    for r in readings:
        by_reader.setdefault(r.reader_id, {})[r.image_id] = r.answer
    pairs = []
    ids = list(by_reader)
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            a, b = by_reader[ids[i]], by_reader[ids[j]]
            common = sorted(set(a) & set(b))
            la, lb = [a[c] for c in common], [b[c] for c in common]
            agree = (sum(1 for u, v in zip(la, lb) if u == v) / len(common)) if common else NAN
            pairs.append(KappaPair(ids[i], ids[j], len(common), cohen_kappa(la, lb), agree))
    return pairs


def _fleiss(readings: Sequence[Reading]) -> Optional[FleissResult]:
    per_image: Dict[str, List[str]] = {}
    for r in readings:
        per_image.setdefault(r.image_id, []).append(r.answer)
    by_m: Dict[int, List[str]] = {}
    for image_id, answers in per_image.items():
        if len(answers) >= 2:
            by_m.setdefault(len(answers), []).append(image_id)
    if not by_m:
        return None
    m = max(by_m, key=lambda k: (len(by_m[k]), k))
    used = sorted(by_m[m])
    table = np.array([[per_image[i].count(REAL), per_image[i].count(SYNTHETIC)] for i in used])
    return FleissResult(fleiss_kappa(table), len(used), m, len(per_image) - len(used))


def _versions(readings: Sequence[Reading], reader_ids: Sequence[str]) -> List[VersionResult]:
    versions = sorted({r.model_version or "" for r in readings if r.truth == SYNTHETIC})
    out = []
    for reader in [POOLED] + list(reader_ids):
        mine = [r for r in readings if reader == POOLED or r.reader_id == reader]
        real_scores = [r.score for r in mine if r.truth == REAL]
        for v in versions:
            syn = [r for r in mine if r.truth == SYNTHETIC and (r.model_version or "") == v]
            if not syn:
                continue
            detected = proportion(sum(1 for r in syn if r.answer == SYNTHETIC), len(syn))
            out.append(VersionResult(v, reader, len(syn), detected, auc_delong(real_scores, [r.score for r in syn])))
    return out


def analyze_readings(
    readings: Sequence[Reading], reader_ids: Optional[Sequence[str]] = None, study_id: str = ""
) -> StudyResults:
    """All statistics of the module docstring from a list of readings."""
    readings = list(readings)
    if reader_ids is None:
        reader_ids = list(dict.fromkeys(r.reader_id for r in readings))
    per_reader = [_reader_result(rid, [r for r in readings if r.reader_id == rid]) for rid in reader_ids]
    pairs = _kappas(readings, reader_ids)
    defined = [p.kappa for p in pairs if not math.isnan(p.kappa)]
    return StudyResults(
        study_id=study_id,
        readers=per_reader,
        pooled=_reader_result(POOLED, readings),
        kappa_pairs=pairs,
        mean_cohen_kappa=float(np.mean(defined)) if defined else NAN,
        fleiss=_fleiss(readings),
        versions=_versions(readings, reader_ids),
        readings=readings,
    )


def load_readings(study_dir: str, key_path: str) -> Tuple[Study, dict, List[Reading], Dict[str, Tuple[int, int]]]:
    """The study, its key (checked to belong to it), every reader's latest answers joined with
    the key, and each reader's (answered, trials)."""
    study = Study.load(study_dir)
    key = load_key(key_path, study)
    images = key["images"]
    readings: List[Reading] = []
    progress: Dict[str, Tuple[int, int]] = {}
    for rid in study.readers:
        session = ReaderSession(study, rid)
        progress[rid] = (session.n_answered, session.n_trials)
        for index, rec in sorted(session.answers().items()):
            entry = images.get(rec["image_id"])
            if entry is None or entry.get("truth") not in (REAL, SYNTHETIC):
                raise InputError(
                    f"The key {key_path} has no truth for image {rec['image_id']} of reader '{rid}'; "
                    "give the key written together with this study."
                )
            readings.append(
                Reading(
                    rid,
                    int(index),
                    rec["image_id"],
                    entry["truth"],
                    rec["answer"],
                    int(rec["confidence"]),
                    str(entry.get("patient_id", "")),
                    entry.get("model_version"),
                    rec.get("response_time_s"),
                )
            )
    return study, key, readings, progress


def analyze_study(study_dir: str, key_path: str) -> StudyResults:
    """Load a study's answers and key and compute every statistic."""
    study, _key, readings, progress = load_readings(study_dir, key_path)
    if not readings:
        raise InputError(f"No reader of {study.root} has answered yet; there is nothing to analyse.")
    results = analyze_readings(readings, study.readers, study.study_id)
    results.progress = progress
    return results
