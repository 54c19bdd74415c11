"""Every kind of push and the named facts each push carries (for template and subscription
notices, which show a few short fields instead of the whole text).

A push is named by its text template (`festivals/notice`); its kind groups pushes a cadre or
staff member reads alike (visit notice, fee reminder, ticket update…). The facts of a push are
Jinja expressions over the values the push already passes to its text template, plus `now`
(the push's local time). Every push of a kind has the same facts; config/templates.yaml says
which fact goes into which field of the kind's template. Two facts exist for every push:
`what` (the kind's `what` pattern over its facts: the one line a generic notice shows) and
`when` (the push's local time). Templates not listed here are of the generic kind `notice`.
"""
from __future__ import annotations

from dataclasses import dataclass

GENERIC = "notice"
COMMON_FACTS = ("what", "when")
ANSWER_VISIT = "回复“走访 时间”或“不在家”"
TICKET = "{{ t.number }}号 {{ t.category }} {{ t.cadre_name }}"


@dataclass(frozen=True)
class Kind:
    """One kind of push: the generic one-line summary, and the facts of each of its pushes."""

    name: str
    what: str                               # str.format over the facts
    pushes: dict[str, dict[str, str]]       # text template -> {fact: Jinja expression}

    @property
    def facts(self) -> tuple[str, ...]:
        """The facts every push of this kind carries (besides what and when)."""
        return tuple(next(iter(self.pushes.values())))


def _ticket_update(state: str, note: str) -> dict[str, str]:
    return {"number": "{{ t.number }}", "category": "{{ t.category }}", "state": state,
            "note": note}


def _staff(alert: str, subject: str = TICKET) -> dict[str, str]:
    return {"alert": alert, "subject": subject}


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("visit_notice", "{festival}：{period}", {
        "festivals/notice": {
            "festival": "{{ festival.name }}走访慰问",
            "period": "{{ visit_from|md }}~{{ visit_to|md }}",
            "answer": ANSWER_VISIT,
            "cadre": "{{ cadre_name }}"}}),
    Kind("greeting", "{occasion}：{words}", {
        "festivals/greeting": {
            "occasion": "{{ festival.name }}问候",
            "date": "{{ day|ymd }}",
            "words": "{{ signature or '组织上' }}祝您节日安康",
            "cadre": "{{ cadre_name }}"},
        "festivals/birthday": {
            "occasion": "{{ age }}岁生日祝福",
            "date": "{{ now|ymd }}",
            "words": "{{ signature or '组织上' }}祝您生日快乐",
            "cadre": "{{ cadre_name }}"}}),
    Kind("fee_reminder", "待缴{fee}{amount}", {
        "fees/reminder": {
            "fee": "{{ items|map(attribute='type')|unique|join('、') }}",
            "period": "{{ items|months }}",
            "amount": "{{ total }}元",
            "cadre": "{{ cadre_name }}"}}),
    Kind("fee_paid", "{fee}{amount}已登记缴纳", {
        "fees/paid_notice": {
            "fee": "{{ items|map(attribute='type')|unique|join('、') }}",
            "period": "{{ items|months }}",
            "amount": "{{ total }}元",
            "date": "{{ today|ymd }}"}}),
    Kind("class_reminder", "{course} {time}", {
        "courses/reminder": {
            "course": "{{ name }}",
            "time": "{{ starts|ymdhm }}",
            "place": "{{ venue }}"}}),
    Kind("class_update", "{course}：{state}", {
        "courses/promoted": {
            "course": "{{ c.name }}",
            "state": "报名成功",
            "time": "{{ c.first|ymdhm }}",
            "place": "{{ c.venue }}"},
        "courses/family_acted": {
            "course": "{{ c.name }}",
            "state": "{{ {'enrolled': '报名成功', 'waitlisted': '候补中'}.get(state, '已取消') }}",
            "time": "{{ c.first|ymdhm }}",
            "place": "{{ c.venue }}"}}),
    Kind("ticket_update", "{number}号问题：{state}", {
        "issues/family_new": _ticket_update("已受理", "{{ t.description }}"),
        "issues/reporter_claimed": _ticket_update("办理中", "工作人员{{ t.assignee }}接手办理"),
        "issues/reporter_transfer": _ticket_update("已转办", "转由{{ t.assignee }}办理"),
        "issues/reporter_resolved": _ticket_update("已办结", "{{ t.resolution }}"),
        "issues/reporter_reopened": _ticket_update("已重开", "{{ t.assignee }}继续办理")}),
    Kind("staff_reply", "{staff}：{content}", {
        "issues/relay": {
            "about": "{{ t.number }}号问题的回复",
            "staff": "{{ staff_name }}",
            "content": "{{ text }}"},
        "people/human_answer": {
            "about": "人工服务答复",
            "staff": "{{ staff_name }}",
            "content": "{{ text }}"}}),
    Kind("broadcast", "{group}：{content}", {
        "broadcasts/notice": {
            "group": "{{ group }}通知",
            "content": "{{ content }}",
            "sender": "{{ sender or group }}"}}),
    Kind("binding", "{event}", {
        "people/binding_announced": {
            "event": "{% if family %}家属绑定了{{ who }}同志{% else %}{{ who }}同志本人已绑定"
                     "{% endif %}",
            "hint": "不认识此人请回复“不是我”"},
        "people/binding_undone_user": {
            "event": "您的绑定已被老同志家人撤销",
            "hint": "有疑问请回复“人工”"}}),
    Kind("staff_alert", "{alert}：{subject}", {
        "issues/staff_new": _staff("新问题{% if t.urgent %}（紧急）{% endif %}"),
        "issues/staff_note": _staff("问题补充"),
        "issues/staff_transfer": _staff("{% if to_you %}转给您办理{% else %}已转给"
                                        "{{ t.assignee }}{% endif %}"),
        "issues/staff_reopened": _staff("问题重开"),
        "issues/staff_low_rating": _staff("评价{{ score }}分"),
        "issues/sla_renotify": _staff("催办：无人接单"),
        "issues/sla_remind": _staff("提醒：还没有回复老同志"),
        "issues/digest": _staff("今日待办", "在办{{ mine|length }}件，"
                                           "待接单{{ unclaimed|length }}件"),
        "festivals/milestone_staff": _staff("整寿走访提醒", "{{ day|md }}有{{ people|length }}"
                                                         "位老同志过整寿"),
        "people/binding_staff_notice": _staff("新绑定", "{{ who }}{% if family %}家属{% else %}"
                                                     "本人{% endif %}已绑定"),
        "people/bind_paused_staff": _staff("绑定暂停", "{{ who }}（{{ phone }}）"),
        "people/binding_undone_staff": _staff("绑定撤销", "{{ who }}{% if family %}家属"
                                                       "{% else %}本人{% endif %}绑定被撤销"),
        "people/human_staff": _staff("人工服务第{{ number }}号", "{% if who.name %}"
                                     "{{ who.name }}{% if who.family %}的家属{% endif %}"
                                     "{% else %}未绑定用户{% endif %}：{{ said }}"),
        "people/thread_staff": _staff("{% if number %}人工服务第{{ number }}号{% else %}"
                                      "{{ ticket }}号问题{% endif %}", "{{ who }}：{{ said }}"),
        "core/emergency_staff": _staff("紧急求助", "{% if name %}{{ name }}（{{ phone }}）"
                                       "{% else %}未绑定用户{% endif %}：{{ said }}")}),
    Kind("escalation", "{alert}：{subject}", {
        "issues/sla_escalate": _staff("上报主管：{{ t.waited_minutes }}分钟无人接单")}),
    Kind(GENERIC, "{text}", {
        "core/raw": {"text": "{{ text }}"},
        "core/lost_message": {"text": "您{{ at|hm }}发的消息未能处理，请再发一次"}}),
)}


BY_TEMPLATE: dict[str, Kind] = {t: k for k in KINDS.values() for t in k.pushes}


def kind_of(template: str) -> Kind:
    """The kind of the push made with this text template (the generic one when unlisted)."""
    return BY_TEMPLATE.get(template, KINDS[GENERIC])
