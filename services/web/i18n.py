"""English and Chinese labels, the language of a request, and amounts for people.

The language is the `lang` cookie (the switch on every page), else the best of the
request's Accept-Language, else English. Amounts are Decimals shown with exactly their
currency's decimals (ISO 4217) and thousands separators; nothing goes through a float.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from schemas.money import currency_decimals

Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = ("en", "zh")

MESSAGES: dict[str, dict[Language, str]] = {
    "app": {"en": "o2c workbench", "zh": "对账工作台"},
    "overview": {"en": "Overview", "zh": "概览"},
    "exceptions": {"en": "Exceptions", "zh": "异常队列"},
    "customers": {"en": "Customers", "zh": "客户"},
    "search": {"en": "Search", "zh": "查询"},
    "users": {"en": "Users", "zh": "用户管理"},
    "role": {"en": "Role", "zh": "角色"},
    "state": {"en": "State", "zh": "状态"},
    "enabled": {"en": "enabled", "zh": "启用"},
    "disabled": {"en": "disabled", "zh": "已停用"},
    "add_user": {"en": "Add user", "zh": "添加用户"},
    "disable": {"en": "Disable", "zh": "停用"},
    "search_hint": {
        "en": "An order, invoice, payment, payout, bank line or customer id, or its beginning",
        "zh": "订单、发票、付款、结算批次、银行流水或客户编号（或其开头）",
    },
    "timeline": {"en": "Timeline", "zh": "时间线"},
    "summary": {"en": "What happened", "zh": "内容"},
    "caused_by": {"en": "Caused by", "zh": "起因事件"},
    "kind": {"en": "Kind", "zh": "类别"},
    "events": {"en": "Events", "zh": "事件数"},
    "balance": {"en": "Current balance", "zh": "当前余额"},
    "receivable": {"en": "Receivable", "zh": "应收金额"},
    "daily": {"en": "Daily report", "zh": "日报"},
    "login": {"en": "Log in", "zh": "登录"},
    "logout": {"en": "Log out", "zh": "退出"},
    "user": {"en": "User", "zh": "用户名"},
    "password": {"en": "Password", "zh": "密码"},
    "login_failed": {"en": "Wrong user name or password.", "zh": "用户名或密码错误。"},
    "login_limited": {
        "en": "Too many failed logins; try again later.",
        "zh": "登录失败次数过多，请稍后再试。",
    },
    "as_of": {"en": "As of", "zh": "截至"},
    "show": {"en": "Show", "zh": "显示"},
    "orders": {"en": "Orders", "zh": "订单数"},
    "matched": {"en": "Matched", "zh": "已匹配"},
    "match_rate": {"en": "Match rate", "zh": "匹配率"},
    "paid": {"en": "Paid", "zh": "已收款"},
    "settled": {"en": "Settled", "zh": "已结算"},
    "written_off": {"en": "Written off", "zh": "核销"},
    "open_by_reason": {"en": "Open exceptions by reason", "zh": "按原因的未结异常"},
    "trend_30": {"en": "Raised per day, last 30 days", "zh": "近30天每日新增"},
    "dso_90": {"en": "DSO, last 90 days", "zh": "应收账款周转天数（近90天）"},
    "target": {"en": "Target", "zh": "目标"},
    "alert": {"en": "Alert", "zh": "警戒线"},
    "ageing": {"en": "AR ageing", "zh": "应收账龄"},
    "by": {"en": "By", "zh": "按"},
    "customer": {"en": "Customer", "zh": "客户"},
    "channel": {"en": "Channel", "zh": "渠道"},
    "region": {"en": "Region", "zh": "地区"},
    "largest_exposures": {"en": "Largest credit exposures", "zh": "信用敞口最大的客户"},
    "exposure": {"en": "Exposure", "zh": "敞口"},
    "credit_limit": {"en": "Credit limit", "zh": "信用额度"},
    "utilisation": {"en": "Utilisation", "zh": "使用率"},
    "breaches": {"en": "Breaches", "zh": "超限次数"},
    "breached": {"en": "Breached", "zh": "已超限"},
    "reason": {"en": "Reason", "zh": "原因"},
    "status": {"en": "Status", "zh": "状态"},
    "owner": {"en": "Owner", "zh": "负责人"},
    "currency": {"en": "Currency", "zh": "币种"},
    "amount": {"en": "Amount", "zh": "金额"},
    "age_days": {"en": "Age (days)", "zh": "账龄（天）"},
    "min_age": {"en": "Age at least", "zh": "最少天数"},
    "detected": {"en": "Detected", "zh": "发现时间"},
    "order": {"en": "Order", "zh": "订单"},
    "any": {"en": "any", "zh": "全部"},
    "filter": {"en": "Filter", "zh": "筛选"},
    "next_page": {"en": "Next page", "zh": "下一页"},
    "first_page": {"en": "First page", "zh": "第一页"},
    "nothing": {"en": "Nothing to show.", "zh": "没有数据。"},
    "open": {"en": "open", "zh": "未处理"},
    "assigned": {"en": "assigned", "zh": "已分配"},
    "resolved": {"en": "resolved", "zh": "已解决"},
    "pending": {"en": "pending", "zh": "处理中"},
    "pending_note": {
        "en": "Published; waiting for the projection to apply it.",
        "zh": "已发布，等待投影处理。",
    },
    "expected": {"en": "Expected", "zh": "应收"},
    "actual": {"en": "Actual", "zh": "实收"},
    "difference": {"en": "Difference", "zh": "差额"},
    "severity": {"en": "Severity", "zh": "严重程度"},
    "history": {"en": "History", "zh": "历史"},
    "type": {"en": "Type", "zh": "类型"},
    "time": {"en": "Time", "zh": "时间"},
    "note": {"en": "Note", "zh": "备注"},
    "assign": {"en": "Assign", "zh": "分配"},
    "assign_me": {"en": "Assign to me", "zh": "分配给我"},
    "assign_to": {"en": "Assign to", "zh": "分配给"},
    "resolve": {"en": "Resolve", "zh": "解决"},
    "suggestions": {"en": "Suggestions", "zh": "建议匹配"},
    "confidence": {"en": "Confidence", "zh": "置信度"},
    "method": {"en": "Method", "zh": "方式"},
    "apply": {"en": "Apply", "zh": "应用"},
    "viewer_only": {
        "en": "You may read; a clerk works the exceptions.",
        "zh": "您只有查看权限；由会计处理异常。",
    },
    "download_csv": {"en": "Download CSV", "zh": "下载 CSV"},
    "mismatches": {"en": "Mismatches", "zh": "差异数"},
    "open_items": {"en": "Open items", "zh": "未结项目"},
    "due_date": {"en": "Due date", "zh": "到期日"},
    "open_amount": {"en": "Open amount", "zh": "未结金额"},
    "not_due": {"en": "not due", "zh": "未到期"},
    "total": {"en": "Total", "zh": "合计"},
    "forbidden": {"en": "You may not do this.", "zh": "您无权执行此操作。"},
    "database_unavailable": {
        "en": "The read models cannot be reached (PostgreSQL is not answering). Try again in a"
        " few seconds; if it lasts, tell whoever runs o2c-matcher.",
        "zh": "无法访问读取模型（PostgreSQL 无响应）。请几秒后重试；"
        "如持续，请联系 o2c-matcher 的运维人员。",
    },
    "kafka_unavailable": {
        "en": "The action was not recorded: Kafka is not answering. Nothing was changed; try"
        " again in a few seconds.",
        "zh": "操作未记录：Kafka 无响应。未做任何更改；请几秒后重试。",
    },
    "refused": {"en": "Refused", "zh": "已拒绝"},
    "sort": {"en": "Sort", "zh": "排序"},
    "newest": {"en": "newest first", "zh": "最新优先"},
    "oldest": {"en": "oldest first", "zh": "最早优先"},
    "largest": {"en": "largest first", "zh": "金额最大优先"},
}


def translate(key: str, language: Language) -> str:
    entry = MESSAGES.get(key)
    return key if entry is None else entry[language]


def negotiate(cookie: str | None, accept_language: str | None) -> Language:
    if cookie in LANGUAGES:
        return cookie
    best: tuple[float, Language] = (0.0, "en")
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > best[0]:
            best = (quality, primary)
    return best[1]


def format_amount(value: Decimal | None, currency: str | None) -> str:
    """E.g. Decimal("1234.5"), "CNY" -> "1,234.50"; JPY shows no decimals."""
    if value is None:
        return ""
    try:
        places = currency_decimals(currency or "")
    except KeyError:
        places = 2
    exact = Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return f"{exact:,.{places}f}"


def format_rate(value: Decimal | None) -> str:
    """A fraction as a percentage with one decimal: Decimal("0.5833") -> "58.3%"."""
    if value is None:
        return ""
    return f"{(Decimal(value) * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_EVEN)}%"
