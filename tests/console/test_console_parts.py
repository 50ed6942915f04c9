"""The console's parts without a browser: its catalogues (every key the templates use is in
French; other languages hold no key French lacks), the language chosen, the flow graph
and charts (escaped text), and where a sign-in may send the browser."""

from __future__ import annotations

import re

from bus.console.i18n import LOCALES, catalogue, choose, languages, translator
from bus.console.signin import HOME, local_path
from bus.console.svg import bar_chart, flow_graph
from bus.console.web import HERE, SCRIPT_LABELS
from bus.flows import FlowRegistry
from schemas.flow import FlowDefinition

LITERAL_KEY = re.compile(r"""\bt\(['"]([a-z_]+\.[a-z_.]+)['"]\s*[,)]""")  # whole keys


def test_every_literal_message_key_of_the_templates_and_code_is_in_french() -> None:
    french = catalogue("fr")
    sources = [*(HERE / "templates").glob("*.html"), *HERE.glob("*.py")]
    used = {k for path in sources for k in LITERAL_KEY.findall(path.read_text())}
    assert len(used) > 100
    assert not used - french.keys(), sorted(used - french.keys())
    assert not set(SCRIPT_LABELS) - french.keys()


def test_other_languages_hold_no_key_french_lacks_and_fall_back_to_french() -> None:
    assert {"fr", "en"} <= set(languages())
    for lang in languages():
        assert not catalogue(lang).keys() - catalogue("fr").keys(), lang
    english = translator("en")
    assert english("nav.documents") == "Documents"
    assert english("dash.partners") == catalogue("fr")["dash.partners"]  # not translated yet
    assert english("no.such.key", "fallback") == "fallback"
    assert translator("fr")("nav.signed_in_as", login="ana") == "Connecté : ana"
    assert (LOCALES / "fr.json").is_file()


def test_the_language_is_the_cookies_then_the_browsers_then_french() -> None:
    assert choose(None, None) == "fr"
    assert choose(None, "en-GB,en;q=0.9") == "en"
    assert choose("fr", "en-GB") == "fr"
    assert choose("xx", "de-DE,de") == "fr"


def test_the_payslip_graph_draws_every_step_with_its_condition_and_retries() -> None:
    payslip = FlowRegistry.load().get("payslip")
    svg = flow_graph(payslip, translator("fr"))
    steps = re.findall(r'<g class="step" data-step="([^"]+)"', svg)
    assert steps == [s.name for s in payslip.steps]
    assert "si meta.channels ∋ ensap" in svg and "reprises : 12 essais" in svg
    assert svg.count('stroke-dasharray="6 4"') == sum(s.optional for s in payslip.steps)
    assert svg.count("marker-end=") >= len(payslip.steps)


def test_text_in_a_graph_or_chart_is_escaped() -> None:
    flow = FlowDefinition.model_validate({
        "name": "hostile", "metadata_model": "document", "steps": [
            {"name": "a", "kind": "noop", "optional": True,
             "when": [{"field": "meta.x", "op": "eq", "value": "<script>x</script>"}]}]})
    svg = flow_graph(flow, translator("en"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "if meta.x = " in svg
    chart = bar_chart("<b>", [("<i>", 3), ("ok", 0)])
    assert "<b>" not in chart and "<i>" not in chart and ">3</text>" in chart


def test_a_sign_in_sends_only_to_a_console_page() -> None:
    assert local_path("/console/documents?state=error") == "/console/documents?state=error"
    for elsewhere in (None, "", "/v1/documents", "//evil.example/console/", "https://evil",
                      "/console/\\evil", "/console/a b", "/console//evil"):
        assert local_path(elsewhere) == HOME, elsewhere
