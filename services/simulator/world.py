"""The seller's world: customers, payer names and accounts, payment methods and their fees."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money(rng: random.Random, low: int, high: int) -> Decimal:
    """A random amount between `low` and `high` currency units, in cents."""
    return Decimal(rng.randrange(low * 100, high * 100)) / 100


@dataclass(frozen=True)
class Provider:
    name: str  # the payout's `provider`
    legal_name: str  # the counterparty on its bank lines
    lag_days: int  # payout_date = capture day + lag
    methods: tuple[str, ...]


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("adyen", "ADYEN N.V.", 2, ("card",)),
        Provider("alipay", "ALIPAY (CHINA) NETWORK TECHNOLOGY CO., LTD.", 1, ("alipay",)),
        Provider("wechatpay", "TENPAY PAYMENT TECHNOLOGY CO., LTD.", 1, ("wechat_pay",)),
        Provider("paypal", "PAYPAL PTE. LTD.", 2, ("paypal",)),
    )
}
PROVIDER_OF_METHOD = {m: p for p in PROVIDERS.values() for m in p.methods}
PSP_METHODS = frozenset(PROVIDER_OF_METHOD)

# Fee rates: card by scheme and card type, wallets flat, PayPal's cross-border rate.
CARD_FEE_RATES = (Decimal("0.015"), Decimal("0.018"), Decimal("0.022"), Decimal("0.029"))
FLAT_FEE_RATES = {"alipay": Decimal("0.006"), "wechat_pay": Decimal("0.006")}
PAYPAL_FEE_RATE = Decimal("0.034")


def fee(method: str, amount: Decimal, rng: random.Random) -> Decimal | None:
    if method == "card":
        return cents(amount * rng.choice(CARD_FEE_RATES))
    if method in FLAT_FEE_RATES:
        return cents(amount * FLAT_FEE_RATES[method])
    if method == "paypal":
        return cents(amount * PAYPAL_FEE_RATE)
    return None


SELLER_ACCOUNTS = {"CNY": "ACC-CNY-ICBC-001", "USD": "ACC-USD-BOC-002", "EUR": "ACC-EUR-DB-003"}

# Retail channels and how their shoppers pay, with weights.
RETAIL_CHANNELS = (("web", 40), ("tmall", 25), ("jd", 20), ("pos", 15))
RETAIL_METHODS = {
    "web": (("card", 55), ("paypal", 12), ("split", 13), ("bank_transfer", 5), ("cod", 15)),
    "tmall": (("alipay", 90), ("split", 10)),
    "jd": (("wechat_pay", 75), ("cod", 25)),
    "pos": (("card", 50), ("alipay", 25), ("wechat_pay", 25)),
}
PSP_CHANNEL_OF_METHOD = {"card": "web", "alipay": "tmall", "wechat_pay": "jd", "paypal": "web"}
REGIONS = ("east", "north", "south", "west", "central")

_SURNAMES = [
    "WANG",
    "LI",
    "ZHANG",
    "LIU",
    "CHEN",
    "YANG",
    "HUANG",
    "ZHAO",
    "WU",
    "ZHOU",
    "XU",
    "SUN",
    "MA",
    "ZHU",
    "HU",
    "GUO",
    "HE",
    "LIN",
]
_GIVEN = [
    "WEI",
    "FANG",
    "NA",
    "MIN",
    "JING",
    "LEI",
    "QIANG",
    "YAN",
    "JUN",
    "TAO",
    "MING",
    "HUA",
    "XIU",
    "YING",
    "LING",
    "PING",
]


# Given names no customer carries: a stranger's name never resolves to a customer.
_STRANGER_GIVEN = ["XIAOYU", "HAORAN", "ZIHAN", "YUTONG", "SIYU", "JIAHAO", "MUCHEN", "YICHEN"]


def stranger(rng: random.Random) -> str:
    return f"{rng.choice(_SURNAMES)} {rng.choice(_STRANGER_GIVEN)}"


def person(rng: random.Random) -> str:
    return f"{rng.choice(_SURNAMES)} {rng.choice(_GIVEN)}"


_PLACES = [
    "Shanghai",
    "Shenzhen",
    "Hangzhou",
    "Suzhou",
    "Ningbo",
    "Xiamen",
    "Chengdu",
    "Wuhan",
    "Tianjin",
    "Qingdao",
]
_WORDS = [
    "Huaxin",
    "Jinfeng",
    "Tianyu",
    "Hengda",
    "Ruixiang",
    "Baolong",
    "Xinghai",
    "Dongfang",
    "Changjiang",
    "Meilin",
    "Zhongtai",
    "Yuanhang",
    "Haitong",
    "Kaida",
    "Lianhe",
    "Shengshi",
    "Fuda",
    "Hongyun",
    "Jiahe",
    "Wanxiang",
]
_TRADES = [
    "Trading",
    "Electronics",
    "Textiles",
    "Logistics",
    "Foods",
    "Machinery",
    "Home",
    "Goods",
    "Retail",
]
_CN_PLACES = ["上海", "深圳", "杭州", "苏州", "宁波", "厦门", "成都", "武汉", "天津", "青岛"]
_CN_WORDS = [
    "华信",
    "金丰",
    "天宇",
    "恒达",
    "瑞祥",
    "宝隆",
    "星海",
    "东方",
    "长江",
    "美林",
    "中泰",
    "远航",
    "海通",
    "凯达",
    "联合",
]
_CN_TRADES = ["贸易", "电子", "纺织", "物流", "食品", "机械", "家居", "商贸"]
_DE_NAMES = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Becker",
    "Hoffmann",
    "Koch",
    "Richter",
    "Wolf",
]
_DE_TRADES = ["Handels", "Import", "Technik", "Vertriebs", "Logistik"]


@dataclass(frozen=True)
class B2BCustomer:
    customer_id: str
    name: str
    currency: str
    terms_days: int
    credit_limit: Decimal
    region: str
    accounts: tuple[str, ...]
    payer_names: tuple[str, ...]  # names the bank has shown for this customer
    run_weekday: int  # the weekday of the customer's payment run (0 Monday)


def company(rng: random.Random) -> tuple[str, str]:
    """A company name and its currency."""
    style = rng.random()
    # Two brand words half of the time: enough distinct names for ten thousand customers.
    words = rng.sample(_WORDS, k=rng.randint(1, 2))
    if style < 0.45:
        place, trade = rng.choice(_PLACES), rng.choice(_TRADES)
        suffix = rng.choice(("Co., Ltd.", "Co. Ltd", "Ltd.", "Limited"))
        return f"{place} {' '.join(words)} {trade} {suffix}", "CNY"
    if style < 0.85:
        brand = "".join(rng.sample(_CN_WORDS, k=len(words)))
        name = rng.choice(_CN_PLACES) + brand + rng.choice(_CN_TRADES)
        return f"{name}有限公司", "CNY"
    return f"{rng.choice(_DE_NAMES)} {rng.choice(_DE_TRADES)} GmbH", "EUR"


_LEGAL = re.compile(
    r"(有限责任公司|有限公司|\b(co\.?,?\s*ltd\.?|co\.?|ltd\.?|limited|gmbh|inc\.?)$)", re.IGNORECASE
)


def normalized(name: str) -> str:
    """Case, punctuation, whitespace and legal suffix removed: the form payer names are
    told apart by. Customers are generated so that no two share it."""
    text = name.strip()
    while True:
        stripped = _LEGAL.sub("", text).strip(" ,.")
        if stripped == text:
            break
        text = stripped
    return re.sub(r"[\W_]+", "", text).lower()


def name_variants(name: str) -> list[str]:
    """How a payer's name shows on bank lines: case, punctuation and legal-suffix variants,
    all with the same normalized form."""
    bare = _LEGAL.sub("", name).strip(" ,.")
    variants = {name, name.upper(), re.sub(r"[.,]", "", name), bare, bare.upper()}
    if "有限公司" in name:
        variants |= {bare + "有限责任公司", " " + name + " "}
    return sorted(v for v in variants if normalized(v) == normalized(name))


def spelling_variants(name: str) -> list[str]:
    """Variants only a fuzzy comparison ties to `name` (shown with a known account)."""
    bare = _LEGAL.sub("", name).strip(" ,.")
    variants = [bare.upper().replace("Ü", "UE"), bare + " G.m.b.H."] if "GmbH" in name else []
    return [*name_variants(name), *variants]


def b2b_customer(number: int, rng: random.Random, taken: set[str]) -> B2BCustomer:
    while True:
        name, currency = company(rng)
        if normalized(name) not in taken:
            taken.add(normalized(name))
            break
    accounts = tuple(
        f"{'CN' if currency == 'CNY' else 'DE'}{rng.randrange(10**15, 10**16)}"
        for _ in range(rng.randint(1, 3))
    )
    variants = name_variants(name)
    return B2BCustomer(
        customer_id=f"CUST-B{number:05d}",
        name=name,
        currency=currency,
        terms_days=rng.choices((0, 15, 30, 60), weights=(30, 20, 30, 20))[0],
        credit_limit=Decimal(rng.choice((200_000, 500_000, 1_000_000, 3_000_000))),
        region=rng.choice(REGIONS),
        accounts=accounts,
        payer_names=tuple(rng.sample(variants, k=min(2, len(variants)))),
        run_weekday=rng.choice((1, 3, 4)),
    )


def garbled(order_id: str, rng: random.Random) -> str:
    """An order reference mistyped so that no order pattern finds an order in it (and so
    never names another order): the payer must be found by account or name."""
    digits = order_id.removeprefix("ORD-")
    return rng.choice(
        (f"ORD {digits}", f"0RD-{digits}", f"ORD{digits}", f"REF:{digits}", f"0RD{digits} PAYMT")
    )
