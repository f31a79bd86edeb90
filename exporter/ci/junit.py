"""JUnit XML from the typed records of ``parity`` and ``compare`` (``xml.etree.ElementTree``).

One ``<testcase>`` per artifact × runtime × metric (parity) or per cell × metric
(compare). A violated tolerance or a regression is a ``<failure>`` whose message
holds the measured value and the tolerance; a metric no tolerance gates is a
``<skipped>`` case saying so, so the counts add up to the table.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

from runtimes.bench.regression import RunComparison, Verdict
from runtimes.parity import ParityResult
from runtimes.records import atomic_write_bytes

# result field, tolerance field, comparison, unit
_PARITY_METRICS = (
    ("cosine", "min_cosine", ">=", ""),
    ("sqnr_db", "min_sqnr_db", ">=", " dB"),
    ("top1_agreement", "min_top1_agreement", ">=", ""),
    ("max_abs_error", "max_abs_error", "<=", ""),
    ("max_rel_error", "max_rel_error", "<=", ""),
)


def _fmt(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.6g}"


def _suite(name: str, cases: list[ET.Element]) -> ET.Element:
    suite = ET.Element("testsuite", name=name, tests=str(len(cases)),
                       failures=str(sum(c.find("failure") is not None for c in cases)),
                       skipped=str(sum(c.find("skipped") is not None for c in cases)), errors="0")
    suite.extend(cases)
    return suite


def _case(classname: str, name: str, failure: str | None = None, skipped: str | None = None,
          output: str | None = None) -> ET.Element:
    case = ET.Element("testcase", classname=classname, name=name, time="0")
    if failure is not None:
        ET.SubElement(case, "failure", message=failure, type="failure").text = failure
    elif skipped is not None:
        ET.SubElement(case, "skipped", message=skipped)
    if output:
        ET.SubElement(case, "system-out").text = output
    return case


def parity_cases(results: Sequence[ParityResult], fail_on_degenerate: bool = True,
                 strict_peers: bool = False) -> list[ET.Element]:
    """A peer row's violations are ``<skipped>`` cases saying so (reported, not gated) unless ``strict_peers``."""
    cases = []
    for r in results:
        gate_it = strict_peers or not r.peer
        classname = f"parity.{r.variant}.{r.format}.{r.runtime}"
        gated = set(r.gated())
        where = f"{r.path} in {r.runtime} vs eager {r.reference}"
        if r.first_divergent_layer:
            where += f"; first divergent layer: {r.first_divergent_layer}"
        for metric, limit_field, op, unit in _PARITY_METRICS:
            value, limit = getattr(r, metric), getattr(r.tolerance, limit_field)
            if value is None:  # a record older than the metric
                continue
            if metric not in gated:
                reason = ("top-1 agreement not checked: untrained weights" if metric == "top1_agreement"
                          and limit is not None else "no tolerance gates it")
                cases.append(_case(classname, metric, skipped=f"{metric} = {_fmt(value)}{unit}: {reason}"))
                continue
            ok = value >= limit if op == ">=" else value <= limit
            text = f"{metric} = {_fmt(value)}{unit}, tolerance {op} {limit:g}{unit} ({where})"
            if not ok and not gate_it:
                cases.append(_case(classname, metric, skipped=f"peer row, reported not gated: {text}"))
                continue
            cases.append(_case(classname, metric, failure=None if ok else text, output=text if ok else None))
        if r.degenerate:
            text = f"{r.path} is degenerate: output variation {r.output_variation:.1e} < 1e-4"
            gated = fail_on_degenerate and gate_it
            cases.append(_case(classname, "output_variation", failure=text if gated else None,
                               output=None if gated else text))
    return cases


def parity_junit(results: Sequence[ParityResult], fail_on_degenerate: bool = True,
                 strict_peers: bool = False) -> ET.ElementTree:
    root = ET.Element("testsuites", name="shrinkwrap parity")
    root.append(_suite("shrinkwrap parity", parity_cases(results, fail_on_degenerate, strict_peers)))
    return ET.ElementTree(root)


def compare_junit(comparison: RunComparison) -> ET.ElementTree:
    cases = []
    for d in comparison.deltas:
        classname = f"compare.{d.cell.replace(' ', '.')}"
        text = d.describe() + (f": {d.note}" if d.note else "")
        if d.verdict is Verdict.REGRESSED:
            cases.append(_case(classname, d.metric, failure=text))
        elif d.verdict is Verdict.NOT_GATED:
            cases.append(_case(classname, d.metric, skipped=text))
        else:
            cases.append(_case(classname, d.metric, output=f"{d.verdict.value}: {text}"))
    for one in comparison.one_sided:
        cases.append(_case(f"compare.{one.cell.replace(' ', '.')}", "present", skipped=one.status))
    root = ET.Element("testsuites", name="shrinkwrap compare")
    root.append(_suite("shrinkwrap compare", cases))
    return ET.ElementTree(root)


def write_junit(path: Path, tree: ET.ElementTree) -> Path:
    ET.indent(tree)
    atomic_write_bytes(Path(path), ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True) + b"\n")
    return Path(path)
