"""claims.md: every headline claim with our numbers beside the published ones, its rule and verdict.

Published numbers and the ids that map our experiments and models to them come only from the
reference file (config/reference_numbers.yaml: its ``experiments`` and ``reproduction``
sections).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis.claims import all_claims
from analysis.claims.agreement import RULE as AGREEMENT_RULE
from analysis.claims.agreement import agreement_section
from analysis.claims.base import CONVERGENCE_POLICY, Claim, Evidence


def published_rows(reference: Mapping, experiment: str) -> dict[str, dict]:
    """Published results of an experiment by our model name (empty when none are mapped)."""
    mapping = reference.get("reproduction", {}).get(experiment, {})
    key, _, variant = mapping.get("published", "").partition("/")
    entry = reference.get("experiments", {}).get(key, {})
    if variant:
        entry = entry.get("variants", {}).get(variant, {})
    by_id = {r["id"]: r for r in entry.get("results", [])}
    return {m: by_id[i] for m, i in mapping.get("models", {}).items() if i in by_id}


def _settings(scale: str, evidence: Evidence, reference: Mapping) -> str:
    runs = evidence.runs
    settings = runs.settings
    data = ", ".join(f"{k} {v}" for k, v in sorted(settings["dataset_params"].items()))
    paper = reference.get("reproduction", {}).get(runs.name, {}).get("paper_settings", "unknown")
    training = settings["training"]
    patience = training.get("early_stopping_patience", 0)
    stopping = (f"early stopping after {patience} epochs without a validation improvement above "
                f"{training.get('early_stopping_min_delta', 0.0)}" if patience
                else "no early stopping (every run trains all its epochs)")
    return (f"This run: scale `{scale}`, dataset {settings['dataset']} ({data}), "
            f"{training['epochs']} epochs, batch {training['batch_size']}, {stopping}, "
            f"{len(runs.seeds)} seeds {runs.seeds}. Paper: {paper}.")


def _measurement_section(claim: Claim, scale: str, data: Any) -> str:
    """The body of a claim judged from a non-experiment measurement (e.g. claim 7)."""
    settings = "; ".join(f"{k} {', '.join(map(str, v)) if isinstance(v, list) else v}"
                         for k, v in sorted(data.settings.items()))
    verdict = claim.assess(data)
    return "\n".join([f"Measurements `{claim.measurement}` (scale `{scale}`, on {data.device}): "
                      f"{settings}.\n",
                      f"**Verdict: {verdict.headline}**\n",
                      f"Rule: {claim.rule}\n",
                      "".join(f"- {r}\n" for r in verdict.reasons),
                      claim.numbers_table(data, {})])


def _claim_section(claim: Claim, scale: str, evidence: Mapping[str, Evidence],
                   reference: Mapping, measurements: Mapping[str, Any],
                   skipped: Mapping[str, str]) -> str:
    head = f"## Claim {claim.number}\n\n{claim.text}\n\n"
    if claim.not_in_pipeline:
        return head + f"**Verdict: not run** ({claim.not_in_pipeline}).\n"
    if claim.measurement:
        if claim.measurement not in measurements:
            return head + (f"**Verdict: not run** (no `{claim.measurement}` measurements: the "
                           f"config has no `{claim.measurement}` section).\n")
        return head + _measurement_section(claim, scale, measurements[claim.measurement])
    present = [e for e in claim.experiments if e in evidence]
    if not present and any(e in skipped for e in claim.experiments):
        return head + "".join(f"**Verdict: not run** (experiment `{e}`: {skipped[e]}).\n\n"
                              for e in claim.experiments if e in skipped)
    if not present:
        return head + (f"**Verdict: not run** (experiment `{'`, `'.join(claim.experiments)}` "
                       "not in this config: not run at this scale / experiment not implemented "
                       "yet).\n")
    body = []
    for experiment in present:
        verdict = claim.assess(evidence[experiment])
        body += [f"Experiment `{experiment}`. {_settings(scale, evidence[experiment], reference)}\n",
                 f"**Verdict: {verdict.headline}**\n",
                 f"Rule: {claim.rule}\n",
                 "".join(f"- {r}\n" for r in verdict.reasons)]
        published = published_rows(reference, experiment)
        body += [claim.numbers_table(evidence[experiment], published),
                 agreement_section(evidence[experiment], published, scale)]
    if claim.sources:
        body.append(claim.sources)
    return head + "\n".join(body)


def claims_markdown(scale: str, evidence: Mapping[str, Evidence], reference: Mapping,
                    measurements: Mapping[str, Any] | None = None,
                    skipped: Mapping[str, str] | None = None) -> str:
    """claims.md for the experiments in ``evidence`` (experiment -> its Evidence), the
    non-experiment ``measurements`` (name -> what the report read, e.g. "efficiency"), and the
    experiments ``skipped`` on purpose (experiment -> the reason printed instead of a verdict)."""
    paper = reference.get("paper", {})
    header = (
        f"# Headline claims: paper vs this reproduction (scale `{scale}`)\n\n"
        f"Published numbers are from the "
        f"**{paper.get('earlier_version', 'ICLR 2019 OpenReview')}** "
        f"version of the paper (mean ± std as printed, number of runs unknown). The ICML 2019 "
        f"values are {paper.get('icml_values', 'absent')} (not available; not estimated). The two "
        f"versions may differ in data and protocol, so published values are context, not "
        f"acceptance targets. Reproduced numbers: mean ± std over seeds (ddof 1) and the "
        f"percentile bootstrap 95% interval of the mean. Verdicts compare models within this "
        f"reproduction (paired by seed), never against the published values; whether our "
        f"numbers agree with the published ones is a separate line per published row below each "
        f"numbers table (\"published value: within / outside\", a finding only at scale "
        f"`paper`): {AGREEMENT_RULE} Models enter a rule "
        f"by the role the config gives them (`models.<name>.role`).\n\n"
        f"Scales other than `paper` use less data and fewer epochs than the paper, so their "
        f"verdicts are about this scale only.\n\n{CONVERGENCE_POLICY}\n\n")
    return header + "\n".join(_claim_section(c, scale, evidence, reference, measurements or {},
                                              skipped or {}) for c in all_claims())
