"""Intent rules over a task's first message: the reason for contact chooses queue and skills."""

from __future__ import annotations

import re
from dataclasses import dataclass

from omnirouter_routing.config import IntentRule, RoutingConfig


@dataclass(frozen=True, slots=True)
class IntentMatch:
    name: str
    language: str
    queue: str | None
    skills: dict[str, int]
    priority_boost: int


@dataclass(frozen=True, slots=True)
class _CompiledLanguage:
    language: str
    pattern: re.Pattern[str] | None
    skills: dict[str, int]


class IntentMatcher:
    """Rules compiled once per configuration; the first rule (then first language) that matches wins."""

    def __init__(self, config: RoutingConfig) -> None:
        self._rules: list[tuple[IntentRule, list[_CompiledLanguage]]] = []
        for rule in config.intents:
            langs = []
            for lang, spec in rule.languages.items():
                # Keywords match whole words, case-insensitively; regexes are taken as written (with
                # IGNORECASE) so operators can express phrases, stems and alternatives.
                parts = [rf"\b{re.escape(k)}\b" for k in spec.keywords] + [f"(?:{r})" for r in spec.regex]
                pattern = re.compile("|".join(parts), re.IGNORECASE) if parts else None
                langs.append(_CompiledLanguage(lang, pattern, dict(spec.skills)))
            self._rules.append((rule, langs))
        self._by_name = {rule.name: rule for rule in config.intents}

    def match(self, text: str) -> IntentMatch | None:
        if not text:
            return None
        for rule, langs in self._rules:
            for lang in langs:
                if lang.pattern is not None and lang.pattern.search(text):
                    skills = dict(rule.required_skills)
                    skills.update(lang.skills)
                    return IntentMatch(rule.name, lang.language, rule.queue, skills, rule.priority_boost)
        return None

    def by_name(self, name: str) -> IntentRule | None:
        return self._by_name.get(name)
