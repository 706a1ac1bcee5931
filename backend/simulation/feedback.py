"""What the simulated officers say: ratings of the explanations they read (helpful or not) and the
monthly survey (NPS), warmer from officers who worked with the AI that month. Pure: the items go to
:class:`FeedbackService` (the console's rules)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from backend.decisioning import FeedbackItem, SurveyItem
from backend.domain import Actor
from backend.simulation.cast import SIM_OFFICERS
from backend.simulation.config import SimConfig
from backend.simulation.draws import Draws, hash01
from backend.simulation.explanations import Explained

RATED_SHARE = 0.35  # explanations an officer rates
HELPFUL = 0.86  # chance a rating says "helpful" when the LLM answer passed its fact-check without a fallback
HELPFUL_DEGRADED = 0.62  # ... after a fallback or a fact-check rejection (the template's text)
NPS_WITH_AI = (10, 10, 9, 9, 9, 8, 8, 7, 6, 5)  # scores an officer picks from, with and without the AI that month
NPS_WITHOUT_AI = (9, 8, 8, 7, 7, 7, 6, 6, 5, 4)


def ratings(explained: Iterable[Explained], draws: Draws, people: dict[str, Actor]) -> list[FeedbackItem]:
    """About a third of the explanations rated, a few minutes after they were read (which ones, and how, is
    drawn per application: the same for a seed, whatever the prediction ids)."""
    by_id = {u.id: u for u in people.values()}
    items = []
    for eid, pid, uid, at, ok, fallback, i in explained:
        if draws.rated[i] >= RATED_SHARE:
            continue
        helpful = bool(draws.helpful[i] < (HELPFUL if ok and not fallback else HELPFUL_DEGRADED))
        u = by_id[uid]
        items.append(FeedbackItem(prediction_id=pid, explanation_id=eid, user_id=uid, username=u.username,
                                  role=u.role, at=at + timedelta(minutes=3), helpful=helpful,
                                  comment=None if helpful else "The reasons were right but the wording was vague."))
    return items


def surveys(cfg: SimConfig, people: dict[str, Actor], with_ai: set[tuple[str, str]],
            answered: set[tuple[object, str]]) -> list[SurveyItem]:
    """Each officer's answer for each month of the history (two days before the month ends), except those
    already ``answered`` ((user id, period)); ``with_ai``: (user id as text, period) of officers who saw AI cards."""
    items = []
    for k in range(cfg.months):
        period = f"{cfg.month(k):%Y-%m}"
        at = cfg.month(k + 1) - timedelta(days=2)
        if not cfg.happened(at):
            continue
        for username, _name, _senior in SIM_OFFICERS:
            u = people[username]
            if (u.id, period) in answered:
                continue
            h = hash01(cfg.seed + 7, f"{username}-{period}")
            scores = NPS_WITH_AI if (str(u.id), period) in with_ai else NPS_WITHOUT_AI
            nps = scores[int(h * len(scores))]
            assert u.id is not None
            items.append(SurveyItem(user_id=u.id, username=u.username, role=u.role, period=period, at=at, nps=nps,
                                    satisfaction=min(5, max(1, round(nps / 2))), comment=None))
    return items
