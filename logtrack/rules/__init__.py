"""YAML rules that turn requests into named, namespaced events (DESIGN §5).

Public API (used by the pipeline and the CLI):
- `load_rules(paths) -> RuleSet` (raises ConfigError listing every problem),
- `check_rules(paths) -> list[str]` (problems as `file:line: key.path: message`),
- `RuleSet.excluded(table)`, `RuleSet.evaluate(table)`, `RuleSet.path_templates`,
  `RuleSet.group_paths(paths)`,
- `run_rule_tests(paths) -> list[RuleTestResult]`, `format_test_results(results)`.
"""

from .load import check_rules, load_rules, rule_file_paths, rules_from_text
from .ruleset import RuleSet
from .testing import RuleTestResult, format_test_results, requests_table, run_rule_tests

__all__ = [
    "RuleSet",
    "RuleTestResult",
    "check_rules",
    "format_test_results",
    "load_rules",
    "requests_table",
    "rule_file_paths",
    "rules_from_text",
    "run_rule_tests",
]
