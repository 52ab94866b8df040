"""Phrase-level evidence of prompt attacks: cheap, explainable, and offline.

Each rule is one compiled regex with a weight (how sure a match alone makes us). Matches of
one category combine by noisy-OR, so several weak signals add up while one strong phrase
("ignore all previous instructions") is enough by itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from detector_orchestration.detectors.builtin.prompt_injection.categories import (
    INSTRUCTION_OVERRIDE,
    JAILBREAK,
    PROMPT_EXFILTRATION,
    TOOL_REQUEST,
    combine,
)

_I = re.IGNORECASE


@dataclass(frozen=True, slots=True)
class Rule:
    category: str
    regex: re.Pattern[str]
    weight: float


def _rule(category: str, source: str, weight: float, flags: int = _I) -> Rule:
    return Rule(category, re.compile(source, flags), weight)


_PRIOR = r"(?:previous|prior|above|earlier|preceding|foregoing|initial|original|system|all|any|your|the|these|those|other)"  # noqa: E501 - one regex per line reads best
_RULES_WORD = (
    r"(?:instructions?|prompts?|rules?|directives?|guidelines?|context|messages?|commands?"
    r"|programming|constraints?|restrictions?|polic(?:y|ies)|orders?|guardrails?)"
)

RULES: tuple[Rule, ...] = (
    # --- instruction override ---
    _rule(
        INSTRUCTION_OVERRIDE,
        rf"\b(?:ignore|disregard|forget|override|bypass|skip|discard|abandon|drop|cancel)\b"
        rf"[^.\n]{{0,30}}\b{_PRIOR}\b[^.\n]{{0,30}}\b{_RULES_WORD}",
        0.85,
    ),
    _rule(
        INSTRUCTION_OVERRIDE,
        r"\b(?:do not|don't|never|stop)\s+(?:follow|obey)(?:ing)?\s+(?:your|the|any)\b",
        0.6,
    ),
    _rule(
        INSTRUCTION_OVERRIDE,
        r"\bnew\s+(?:system\s+)?(?:instructions?|rules|directives?|task|objective|prompt)\s*[:\-]",
        0.4,
    ),
    _rule(INSTRUCTION_OVERRIDE, r"\byou\s+are\s+no\s+longer\b", 0.5),
    _rule(
        INSTRUCTION_OVERRIDE,
        r"\b(?:from now on|starting now|henceforth|for the rest of this conversation)\b[^.\n]{0,40}"
        r"\b(?:you\s+(?:are|will|must|shall|can)|act|respond|answer|reply)",
        0.35,
    ),
    _rule(
        INSTRUCTION_OVERRIDE,
        r"<\|?(?:im_start|im_end|system|endoftext)\|?>|\[/?(?:INST|SYS)\]"
        r"|#{2,}\s*(?:system|new instructions?)\b|\bend of (?:system )?(?:prompt|instructions)\b",
        0.55,
    ),
    _rule(INSTRUCTION_OVERRIDE, r"(?:^|\n)\s*(?:system|assistant)\s*:", 0.4),
    _rule(
        INSTRUCTION_OVERRIDE,
        r"\b(?:system|admin(?:istrator)?|developer)\s+(?:override|mode\s+override)\b",
        0.6,
    ),
    # --- jailbreak / persona ---
    _rule(JAILBREAK, r"\bdo anything now\b", 0.6),
    _rule(JAILBREAK, r"\bDAN\b|\bSTAN\b|\bDUDE\b|\bAIM\b", 0.35, 0),
    _rule(JAILBREAK, r"\bdev(?:eloper)?\s+mode\b", 0.45),
    _rule(JAILBREAK, r"\bjail\s?br(?:eak|oken|eaking)\b", 0.45),
    _rule(
        JAILBREAK,
        r"\b(?:without|no|free (?:of|from)|ignor\w*|not bound by|break(?:ing)? free (?:of|from)|bypass\w*|"  # noqa: E501 - one regex per line reads best
        r"unconstrained by)\s+(?:any\s+|all\s+|the\s+|your\s+)?(?:ethical|moral|content|safety|openai|usage"  # noqa: E501 - one regex per line reads best
        r"|typical|normal)?\s*(?:restrictions|filters?|guidelines|limitations|limits|policies|rules|censorship"
        r"|morals|ethics|boundaries)",
        0.6,
    ),
    _rule(
        JAILBREAK,
        r"\b(?:pretend|imagine|act\s+as|acting\s+as|role-?play|you\s+are\s+now|you\s+will\s+be|become|simulate)"
        r"\b[^\n]{0,80}\b(?:unfiltered|uncensored|unrestricted|unethical|amoral|immoral|evil|rogue|no\s+"
        r"(?:limits|rules|restrictions|filters?|morals|ethics))",
        0.75,
    ),
    _rule(
        JAILBREAK, r"\b(?:stay|remain|keep)\s+in\s+character\b|\bbreak(?:ing)?\s+character\b", 0.4
    ),
    _rule(
        JAILBREAK,
        r"\b(?:never|don't|do not|must not|cannot|can't|won't)\s+(?:ever\s+)?(?:refuse|decline|say no|apologi[sz]e"  # noqa: E501 - one regex per line reads best
        r"|warn|include (?:a |any )?(?:warnings?|disclaimers?))",
        0.4,
    ),
    _rule(
        JAILBREAK,
        r"\[(?:🔒|🔓)|\((?:🔒|🔓)|\b(?:CLASSIC|JAILBREAK|DAN|NORMAL)\]|\bopposite\s+mode\b",
        0.6,
    ),
    _rule(
        JAILBREAK, r"\b(?:lose|deduct\w*|take away)\b[^.\n]{0,20}\btokens?\b|\btoken system\b", 0.5
    ),
    _rule(
        JAILBREAK,
        r"\b(?:answer|respond to|reply to|comply with)\s+(?:every|any|all)\s+(?:questions?|prompts?|requests?)"  # noqa: E501 - one regex per line reads best
        r"[^.\n]{0,30}\b(?:without|regardless|no matter|even if)",
        0.45,
    ),
    _rule(
        JAILBREAK,
        r"\b(?:not|never)\s+(?:be\s+)?(?:bound|restricted|limited|constrained)\s+by\b",
        0.55,
    ),
    _rule(
        JAILBREAK,
        r"\b(?:illegal|unethical|harmful|offensive|explicit)\b[^.\n]{0,40}\b(?:allowed|permitted|acceptable|ok)\b",
        0.35,
    ),
    _rule(JAILBREAK, r"\bas an? (?:ai|language model)\b[^.\n]{0,30}\bwithout\b", 0.35),
    # persona set-ups: weak alone, they add up in the long role-play prompts
    _rule(JAILBREAK, r"\b(?:chat\s?gpt|openai|bing ai|bard|gpt-?[345])\b", 0.2),
    _rule(
        JAILBREAK,
        r"\b(?:you are going to|you will|you must|i want you to|you have to)\s+(?:now\s+)?(?:pretend|act|imitate"  # noqa: E501 - one regex per line reads best
        r"|role-?play|simulate|become|behave|answer as|respond as)\b",
        0.3,
    ),
    _rule(JAILBREAK, r"\blet'?s play a (?:game|role-?play)\b", 0.3),
    _rule(JAILBREAK, r"\[(?:insert )?prompt(?: here)?\]|\{prompt\}|\[insert [^\]]{0,20}\]", 0.5),
    _rule(
        JAILBREAK,
        r"\bif you (?:understand|agree|are ready)\b[^.\n]{0,40}\b(?:say|reply|respond|answer|type)\b"  # noqa: E501 - one regex per line reads best
        r"|\b(?:say|reply|respond|answer) (?:only )?[\"'\w ]{1,30} if you understand\b",
        0.35,
    ),
    _rule(JAILBREAK, r"\b(?:unaligned|uncensored|unfiltered|unrestricted|amoral)\b", 0.35),
    _rule(
        JAILBREAK,
        r"\b(?:you will|you must|always)\s+(?:always\s+)?(?:answer|respond|reply|speak|stay)\s+(?:as|in the"  # noqa: E501 - one regex per line reads best
        r" (?:voice|style|role))\b",
        0.3,
    ),
    _rule(
        JAILBREAK,
        r"\byou are (?:now )?(?:an? )?(?:\w+ )?(?:ai|chatbot|assistant|model|character|persona|bot)\s+"  # noqa: E501 - one regex per line reads best
        r"(?:called|named|known as)\b",
        0.3,
    ),
    _rule(JAILBREAK, r"\b(?:unlimited|no) (?:power|tokens|limits|boundaries)\b", 0.3),
    # --- system prompt and data exfiltration ---
    _rule(
        PROMPT_EXFILTRATION,
        r"\b(?:reveal|show|print|output|repeat|display|tell me|give me|leak|dump|share|quote|what (?:is|are|were))"  # noqa: E501 - one regex per line reads best
        r"\b[^.\n]{0,30}\b(?:(?:your|the)\s+(?:system|initial|original|hidden|secret|developer|internal)\s+"
        r"(?:prompt|instructions)|your\s+(?:(?:hidden|secret|internal|original|initial)\s+)?(?:rules|configuration"
        r"|directives|system message|prompt|instructions))",
        0.85,
    ),
    _rule(
        PROMPT_EXFILTRATION,
        r"\b(?:repeat|print|output)\b[^.\n]{0,20}\b(?:words|text|everything)\s+above\b",
        0.45,
    ),
    _rule(
        PROMPT_EXFILTRATION,
        r"\b(?:send|post|exfiltrate|forward|upload|transmit|append)\b[^.\n]{0,50}\b(?:conversation|chat history"  # noqa: E501 - one regex per line reads best
        r"|previous messages|user data|credentials|passwords?|api keys?|records)\b[^.\n]{0,50}\b(?:to|into)\b",  # noqa: E501 - one regex per line reads best
        0.6,
    ),
    _rule(PROMPT_EXFILTRATION, r"!\[[^\]\n]*\]\(https?://[^)\s]*\?[^)\s]*=", 0.5),
    # --- tool and agent hijacking ---
    _rule(
        TOOL_REQUEST,
        r"\b(?:call|invoke|execute|trigger|use)\s+(?:the\s+|your\s+)?[\w.-]*\s*(?:tool|function|plugin|webhook|api)\b"
        r"[^.\n]{0,60}\b(?:without|silently|secretly|don't tell|do not tell|every|all)\b",
        0.55,
    ),
    _rule(TOOL_REQUEST, r"\bcurl\b[^\n|]{0,120}\|\s*(?:ba|z)?sh\b|\brm\s+-rf\s+[/~]", 0.6),
    _rule(
        TOOL_REQUEST,
        r"\b(?:without|don't|do not)\s+(?:telling|asking|informing|notifying)\s+the\s+user\b",
        0.5,
    ),
)


def heuristic_scores(text: str) -> dict[str, float]:
    """Per category: the noisy-OR of the weights of its rules that match ``text``."""
    weights: dict[str, list[float]] = {}
    for rule in RULES:
        if rule.regex.search(text):
            weights.setdefault(rule.category, []).append(rule.weight)
    return {category: combine(*found) for category, found in weights.items()}
