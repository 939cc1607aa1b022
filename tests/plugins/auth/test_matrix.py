"""The Rego policies against the permission matrix (``matrix/*.csv``): every generated case asked of
rego-cpp (the embedded evaluator) and of OPA's own engine, which must give identical answers, a
sample of them of an OPA server over its Data API, and each list filter checked against
``allow(view)`` on sample rows."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

import pytest

from annota.core.policies import PolicyRegistry
from annota.core.services import jobs, labels, projects, requests, tasks
from annota.core.services.cloudstorages import storages as cloud_storages
from annota.core.services.review import comments, issues
from annota.plugins.auth.config import AuthConfig
from annota.plugins.auth.embedded import CompiledBundle, defines
from annota.plugins.auth.evaluator import as_allow, as_filter
from annota.plugins.auth.remote import RemoteEvaluator
from annota.plugins.webhooks import store as webhook_store
from annota.testing.opa_engine import OpaPolicies
from annota.testing.opa_server import serve
from tests.plugins.auth import matrix
from tests.plugins.auth.conftest import ENGINE_TIMES
from tests.plugins.auth.engines import Twin, mutated

PACKAGES = sorted(path.stem for path in matrix.HERE.glob("*.csv"))
#: packages with scopes other than lists (``events`` answers lists alone)
DECIDING = [
    package
    for package in PACKAGES
    if set(matrix.scopes(matrix.load(package))) - matrix.PACKAGES[package].list_scopes
]
#: packages answering lists by ``filter``
LISTING = [package for package in PACKAGES if "list" in matrix.PACKAGES[package].list_scopes]
#: the SQL translation of each filtered package, whose field names a filter must use
POLICY_FIELDS: Mapping[str, Mapping[str, Any]] = {
    "tasks": tasks.POLICY_FIELDS,
    "projects": projects.POLICY_FIELDS,
    "jobs": jobs.POLICY_FIELDS,
    "labels": labels.POLICY_FIELDS,
    "webhooks": webhook_store.POLICY_FIELDS,
    "requests": requests.POLICY_FIELDS,
    "issues": issues.POLICY_FIELDS,
    "cloudstorages": cloud_storages.POLICY_FIELDS,
    "comments": comments.POLICY_FIELDS,
}
SHOWN = 40
#: each package's cases, generated once for the module
cases_of = functools.cache(matrix.cases)
#: one case in this many of each package also goes through an OPA server's Data API (all of them
#: are asked of both engines in-process, which is where the policies are judged)
OVER_HTTP = 8
#: documents with keys removed or odd values, per package, asked of both engines
MUTATIONS = 150
T = TypeVar("T")


@pytest.fixture(scope="module")
def bundle(installed_policies: PolicyRegistry) -> CompiledBundle:
    """The installed plugins' policies, compiled once for the module."""
    return CompiledBundle(installed_policies.modules)


@pytest.fixture(scope="module")
def engines(
    installed_policies: PolicyRegistry, bundle: CompiledBundle, pytestconfig: pytest.Config
) -> Iterator[Twin]:
    """rego-cpp and OPA's engine over the installed policies, each compiled once for the module;
    the time each spent is reported at the end of the run."""
    with OpaPolicies(installed_policies.modules) as opa:
        twin = Twin(bundle, opa)
        yield twin
    pytestconfig.stash.setdefault(ENGINE_TIMES, []).append(twin)


@pytest.fixture
def twin(engines: Twin) -> Iterator[Twin]:
    """Both engines; the test fails when they answered anything differently."""
    engines.take()
    yield engines
    assert not engines.disagreements, engines.report()
    engines.take()


def answering(installed_policies: PolicyRegistry, rule: str) -> list[str]:
    return sorted(module.package for module in installed_policies.modules if defines(module, rule))


def test_every_policy_package_has_a_matrix(installed_policies: PolicyRegistry) -> None:
    """Every package that answers something (not a library such as ``utils``) has its CSV."""
    answering = [
        module.package
        for module in installed_policies.modules
        if defines(module, "allow") or defines(module, "filter")
    ]
    assert sorted(answering) == PACKAGES


def report(package: str, problems: list[str], total: int) -> str:
    listed = "\n  ".join(problems[:SHOWN])
    more = f"\n  … and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
    return f"{package}: {len(problems)} of {total} cases disagree with {package}.csv:\n  {listed}{more}"


def mismatches(cases: list[matrix.Case], answers: list[bool]) -> list[str]:
    return [
        f"{case} -> {'allowed' if answer else 'denied'}, expected {'allowed' if case.expected else 'denied'}"
        for case, answer in zip(cases, answers, strict=True)
        if answer != case.expected
    ]


@pytest.mark.parametrize("package", DECIDING)
def test_every_case_of_the_matrix_with_both_engines(twin: Twin, package: str) -> None:
    """The matrix's answer from rego-cpp, and the very same value from OPA's engine."""
    cases = cases_of(package)
    assert cases, f"{package}.csv yields no cases"
    answers = [as_allow(twin.query(package, "allow", case.document)) for case in cases]
    problems = mismatches(cases, answers)
    assert not problems, report(package, problems, len(cases))


def test_every_policy_answers_alike_in_both_engines_on_odd_documents(
    twin: Twin, installed_policies: PolicyRegistry
) -> None:
    """Every module's ``allow`` and ``filter`` on matrix documents with keys missing, nulls and
    wrong types: where Rego is easy to read two ways (undefined under ``not``, conflicting rule
    bodies, builtins given the wrong type), rego-cpp and OPA must still agree."""
    rnd = random.Random(20261207)
    asked = 0
    for rule in ("allow", "filter"):
        for package in answering(installed_policies, rule):
            if package not in matrix.PACKAGES:
                continue  # test_every_policy_package_has_a_matrix names it
            documents = [case.document for case in cases_of(package)]
            documents += [caller.list_document() for caller in matrix.list_callers()]
            for document in rnd.sample(documents, min(MUTATIONS, len(documents))):
                twin.query(package, rule, mutated(document, rnd))
                asked += 1
    assert asked > MUTATIONS


def test_the_matrix_through_an_opa_server(installed_policies: PolicyRegistry, bundle: CompiledBundle) -> None:
    """The remote evaluator's HTTP path: one case in ``OVER_HTTP`` of every package, and every list
    caller's filter, asked of an OPA server's Data API (OPA's engine) over the same bundle: the same
    answers as the matrix and the embedded evaluator."""
    chosen: list[tuple[str, matrix.Case]] = []
    for package in DECIDING:
        chosen += [(package, case) for case in cases_of(package)[::OVER_HTTP]]
    listing = [(package, caller.list_document()) for package in LISTING for caller in matrix.list_callers()]

    async def ask(url: str) -> tuple[list[bool], list[Any]]:
        evaluator = RemoteEvaluator(AuthConfig(opa_url=url, opa_timeout=10.0))
        limit = asyncio.Semaphore(16)

        async def bounded(call: Awaitable[T]) -> T:
            async with limit:
                return await call

        try:
            answers = await asyncio.gather(
                *(bounded(evaluator.allow(package, case.document)) for package, case in chosen)
            )
            filters = await asyncio.gather(
                *(bounded(evaluator.filter(package, document)) for package, document in listing)
            )
            return list(answers), list(filters)
        finally:
            await evaluator.close()

    with serve(registry=installed_policies) as url:
        answers, filters = asyncio.run(ask(url))
    problems = mismatches([case for _, case in chosen], answers)
    assert not problems, report("remote", problems, len(chosen))
    embedded = [as_filter(bundle.query(package, "filter", document)) for package, document in listing]
    differ = [
        f"{package} {document['auth']}: remote {remote}, embedded {local}"
        for (package, document), remote, local in zip(listing, filters, embedded, strict=True)
        if remote != local
    ]
    assert not differ, report("remote filters", differ, len(listing))


# --- list filters -----------------------------------------------------------------------------


@pytest.mark.parametrize("package", LISTING)
def test_who_gets_a_list_follows_the_list_rows(twin: Twin, package: str) -> None:
    """A caller a ``list`` row admits gets a filter that can match; anyone else one matching nothing."""
    rules = matrix.load(package)
    problems = []
    callers = list(matrix.list_callers())
    for caller in callers:
        answer = as_filter(twin.query(package, "filter", caller.list_document()))
        expected = matrix.may_list(package, rules, caller.context, caller.privilege, caller.role)
        if (answer != ["|"]) != expected:
            problems.append(f"{caller}: filter {answer}, expected {'some' if expected else 'nothing'}")
    assert not problems, report(package, problems, len(callers))


def filter_problems(
    query: Callable[[str, str, dict[str, Any]], Any], package: str, rules: list[matrix.Rule]
) -> tuple[list[str], int]:
    """Rows a caller's filter selects without ``allow(view)`` on them (a leak), or leaves out
    although the caller may view them, may list, and the row is in the listed context."""
    spec = matrix.PACKAGES[package]
    assert spec.row is not None
    known = set(POLICY_FIELDS[package])
    problems: list[str] = []
    checked = 0
    for caller in matrix.list_callers():
        answer = as_filter(query(package, "filter", caller.list_document()))
        unknown = matrix.fields(answer) - known
        if unknown:
            problems.append(f"{caller}: filter {answer} names fields the server lacks: {sorted(unknown)}")
            continue
        listing = matrix.may_list(package, rules, caller.context, caller.privilege, caller.role)
        for ownership, organization, resource in matrix.sample_objects(package):
            checked += 1
            listed = matrix.matches(answer, spec.row(resource))
            viewable = as_allow(query(package, "allow", caller.view_document(resource, organization)))
            in_context = caller.sees_context(organization)
            if caller.specified:
                wrong = listed != (viewable and in_context and listing)
            else:
                # naming no context, a list holds what the caller sees in the sandbox and in their
                # organizations as a plain member (not everything a maintainer could open there)
                as_member = caller.view_document(resource, organization, role="worker")
                theirs = as_allow(query(package, "allow", as_member)) and (
                    organization is None or organization in caller.member_of
                )
                wrong = (listed and not viewable) or (viewable and theirs and listing and not listed)
            if wrong:
                problems.append(
                    f"{caller}, object in org {organization} with ownership={ownership}: "
                    f"{'listed' if listed else 'not listed'} but {'' if viewable else 'not '}viewable"
                    f"{'' if in_context else ', outside the listed context'}; filter {answer}"
                )
    return problems, checked


@pytest.mark.parametrize("package", sorted(POLICY_FIELDS))
def test_a_list_shows_exactly_what_the_caller_may_view(twin: Twin, package: str) -> None:
    problems, checked = filter_problems(twin.query, package, matrix.load(package))
    assert checked
    assert not problems, report(package, problems, checked)
