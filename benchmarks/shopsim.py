"""A simulated shop (web front end + REST API) whose access log comes with its ground truth.

People (a visitor is one IP + user agent) make sessions of page views with their assets and API
calls: browse, search, add to cart, sign up or log in, order. Between two sessions of one visitor
there are always more than 45 minutes, inside a session never more than 10 minutes between
requests, so the 30-minute sessions of GA4 are unambiguous. Crawlers, tools, health checks, a
scanner and some garbage lines surround them. `simulate()` renders nginx combined lines and
computes the truth from the records it wrote (`shoptruth.py`). Background traffic: `shopbots.py`.
The URL shapes are the contract with `rules/`; `sample_logs/README.md` lists them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate

if __package__:
    from . import shopbots
    from .logpools import ClfClock, ip_prefix, random_ipv4, random_ipv6, user_agents
    from .shoptruth import Rec, compute_truth
else:
    import shopbots
    from logpools import ClfClock, ip_prefix, random_ipv4, random_ipv6, user_agents
    from shoptruth import Rec, compute_truth

SITE = "https://shop.example.com"
DEFAULT_START = datetime(2026, 3, 2, 5, 25, tzinfo=UTC)  # 06:25 +0100, just after logrotate ran
DEFAULT_OFFSET = "+0100"  # the shop runs in Europe/Berlin; winter time
SESSION_GAP = 45 * 60  # minimum idle time between two sessions of one visitor (> the 30 min timeout)
THINK_MAX = 600  # maximum idle time inside a session (< the 30 min timeout)
PRODUCTS = tuple(range(1001, 1121))
CATEGORIES = ("shoes", "dresses", "jackets", "accessories", "bags", "kitchen", "gifts", "sale")
SEARCHES = ("red+dress", "running+shoes", "caf%C3%A9+mug", "usb-c+cable", "gift+for+dad", "rain+jacket",
            "leather+backpack", "linen+shirt", "wool+socks", "espresso+cups", "winter+boots", "sale")
# Product popularity: Zipf-like over a fixed shuffled ranking, so ids are not ranked by number.
_RANKING = random.Random(1120).sample(PRODUCTS, len(PRODUCTS))
POPULARITY = list(accumulate(1 / (_RANKING.index(p) + 1) ** 0.9 for p in PRODUCTS))
ENTRIES = ("direct", "organic_search", "paid_search", "social", "email", "referral", "affiliate")
ENTRY_W = (28, 25, 8, 12, 10, 10, 5)
APP_UA = r"Dalvik/2.1.0 (Linux; U; Android 5.1; Alba 10\x22 Build/LMY47I)"  # nginx escapes " as \x22
HUMAN_SHARE, HEALTH_SHARE, MALFORMED_SHARE = 0.74, 0.08, 0.0015
LINES_PER_SESSION = 11.0  # measured average, used to size the simulation before trimming


@dataclass
class Visitor:
    """One person on one device: what the log identifies as IP + user agent."""

    idx: int
    ip: str
    ua: str
    proto: str
    account: str | None = None
    logged_in: bool = False
    last_end: float = -1e18
    cached: bool = False
    app: bool = False


@dataclass
class ShopLog:
    """Records in write order, rendered lines, and the truth."""

    records: list[Rec]
    lines: list[bytes]
    truth: dict
    start: float
    span: float

    def split(self, parts: int) -> list[list[bytes]]:
        """Lines cut into `parts` equal time slices by write time, oldest first (a rotated set)."""
        out: list[list[bytes]] = [[] for _ in range(parts)]
        for rec, line in zip(self.records, self.lines, strict=True):
            k = int((rec.wts - self.start) / self.span * parts)
            out[min(max(k, 0), parts - 1)].append(line)
        return out


@dataclass
class _Sim:
    rng: random.Random
    visitors: list[Visitor] = field(default_factory=list)
    pairs: set = field(default_factory=set)  # (network prefix, user agent) of every visitor
    networks: set = field(default_factory=set)
    accounts: list = field(default_factory=list)  # unused names of accounts made before the log starts
    next_user: int = 2001
    next_order: int = 50_001

    def think(self) -> float:
        return min(THINK_MAX - 30, max(3.0, self.rng.lognormvariate(math.log(35), 0.9)))

    # --- visitors -------------------------------------------------------------------------
    def new_visitor(self) -> Visitor:
        rng, idx = self.rng, len(self.visitors)
        people = user_agents(("desktop", "mobile", "tablet"), "modern")
        while True:
            ua = rng.choices(people, [u.weight * {"desktop": 1.0, "mobile": 1.4, "tablet": 0.8}[u.kind]
                                      for u in people])[0].ua
            if idx == 3:  # shares the office NAT address of visitor 2, with another browser
                ip = self.visitors[2].ip
            else:
                ip = random_ipv6(rng) if rng.random() < 0.08 else random_ipv4(rng)
            if idx == 5:  # the Android app user: API calls only, a quote in the UA
                ua = APP_UA
            # Unique per /24 (/48) + UA: logtrack hashes the truncated IP, so two people must differ.
            if (ip_prefix(ip), ua) not in self.pairs and (idx == 3 or ip_prefix(ip) not in self.networks):
                break
        self.pairs.add((ip_prefix(ip), ua))
        self.networks.add(ip_prefix(ip))
        if not self.accounts and idx == 0:
            self.accounts = rng.sample(range(1001, 2001), 1000)
        # One account per visitor, so a user id never shows up on two devices.
        account = None
        if rng.random() < 0.3:
            account = f"u{self.accounts.pop()}" if self.accounts else f"u{100_000 + idx}"
        v = Visitor(idx, ip, ua, "HTTP/2.0" if rng.random() < 0.8 else "HTTP/1.1", account, app=idx == 5)
        self.visitors.append(v)
        return v

    def pick_visitor(self, t0: float) -> Visitor:
        rng = self.rng
        if self.visitors and rng.random() < 0.4:
            for _ in range(8):
                v = rng.choice(self.visitors)
                if v.last_end + SESSION_GAP <= t0:
                    return v
        return self.new_visitor()

    # --- requests -------------------------------------------------------------------------
    def emit(self, out: list[Rec], v: Visitor, t: float, method: str, target: str, status: int, size: int | str,
             ref: str, kind: str, label: str = "") -> None:
        out.append(Rec(t, t, v.ip, v.account if v.logged_in else "-", method, target, v.proto, status, str(size),
                       ref, v.ua, v.idx, kind, label))

    def page(self, out: list[Rec], v: Visitor, t: float, target: str, ref: str, first: bool) -> None:
        rng = self.rng
        if target.startswith("/products/9"):  # an old link to a product that is gone
            self.emit(out, v, t, "GET", target, 404, 1_562, ref, "other")
        elif target.startswith("/search") and rng.random() < 0.04:  # the search backend times out now and then
            self.emit(out, v, t, "GET", target, 504, 562, ref, "other")
            return
        else:
            self.emit(out, v, t, "GET", target, 200, rng.randint(12_000, 40_000), ref, "page")
        url, at = SITE + target, t + rng.uniform(0.1, 0.6)
        if first:
            for asset, size in (("/static/app.css", 48_211), ("/static/app.js", 184_233), ("/static/img/logo.png", 7_304)):
                self.emit(out, v, at, "GET", asset, 304 if v.cached else 200, 0 if v.cached else size, url, "static")
                at += rng.uniform(0.02, 0.3)
            if not v.cached:
                self.emit(out, v, at, "GET", "/favicon.ico", 200, 4_286, url, "static")
            v.cached = True
        if target.startswith("/products/1"):
            pid = target.split("/")[2].split("?")[0]
            self.emit(out, v, at, "GET", f"/static/img/products/{pid}.png", 200, rng.randint(30_000, 90_000), url, "static")
        elif target.startswith("/category/"):
            slug = target.split("/")[2].split("?")[0]
            self.emit(out, v, at + 0.2, "GET", f"/api/v1/products?category={slug}&page=1", 200,
                      rng.randint(2_000, 9_000), url, "api")

    def landing(self, entry: str) -> tuple[str, str]:
        rng, pid = self.rng, self.product()
        if entry == "direct":
            return rng.choice(("/", "/", f"/products/{pid}")), "-"
        if entry == "organic_search":
            return (rng.choice(("/", f"/products/{pid}", f"/category/{rng.choice(CATEGORIES)}")),
                    rng.choice(("https://www.google.com/", "https://www.google.de/", "https://www.bing.com/",
                                "https://duckduckgo.com/", "https://www.ecosia.org/")))
        if entry == "paid_search":
            return (f"/products/{pid}?utm_source=google&utm_medium=cpc&utm_campaign=spring_brand"
                    f"&gclid=Cj0KCQiA{rng.getrandbits(64):016x}_BwE", "https://www.google.com/")
        if entry == "social":
            if rng.random() < 0.5:
                return f"/products/{pid}?fbclid=IwAR{rng.getrandbits(80):020x}", "https://l.facebook.com/"
            return (f"/products/{pid}?utm_source=instagram&utm_medium=social&utm_campaign=spring_drop",
                    "https://www.instagram.com/")
        if entry == "email":
            return "/category/sale?utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale", "-"
        if entry == "referral":
            return f"/products/{pid}", rng.choice(("https://blog.example.org/gift-guide-2026/",
                                                   "https://www.reddit.com/r/BuyItForLife/comments/1b2c3d/boots/"))
        return "/?utm_source=dealsite&utm_medium=affiliate&utm_campaign=spring_sale", "https://deals.example.net/spring"

    def product(self) -> int:
        return self.rng.choices(PRODUCTS, cum_weights=POPULARITY)[0]

    def next_page(self) -> str:
        r = self.rng.random()
        if r < 0.45:
            return f"/products/{self.product()}"
        if r < 0.65:
            return f"/category/{self.rng.choice(CATEGORIES)}"
        if r < 0.8:
            return f"/search?q={self.rng.choice(SEARCHES)}"
        if r < 0.95:
            return "/"
        return f"/products/{self.rng.randint(9000, 9999)}"  # an old link: 404

    def session(self, v: Visitor, t0: float, entry: str) -> list[Rec]:
        """One visit; returns its records (times may exceed t0 by up to a couple of hours)."""
        rng, out = self.rng, []
        if v.logged_in and rng.random() < 0.35:
            v.logged_in = False  # the login cookie expired since the last visit
        if v.app:
            return self.app_session(v, t0)
        target, ref = self.landing(entry)
        pages = 1 if rng.random() < 0.33 else min(12, 2 + int(rng.expovariate(1 / 3)))
        t, cart = t0, 0
        for i in range(pages):
            if i:
                t += self.think()
                ref, target = SITE + target, self.next_page()
            self.page(out, v, t, target, ref, first=i == 0)
            if target.startswith("/products/1") and rng.random() < 0.22:
                t += rng.uniform(4, 40)
                self.emit(out, v, t, "POST", "/api/v1/cart/items", 201, 87, SITE + target, "api", "cart_add")
                cart += 1
        if cart and rng.random() < 0.45:
            t = self.checkout(out, v, t, SITE + target)
        elif v.account and not v.logged_in and rng.random() < 0.1:
            t = self.login(out, v, t, SITE + target)
        elif not v.account and rng.random() < 0.04:
            t = self.signup(out, v, t, SITE + target)
        return out

    def login(self, out: list[Rec], v: Visitor, t: float, ref: str) -> float:
        t += self.think()
        self.page(out, v, t, "/login", ref, first=False)
        t += self.rng.uniform(8, 40)
        if self.rng.random() < 0.2:  # a mistyped password first
            self.emit(out, v, t, "POST", "/api/v1/sessions", 401, 52, SITE + "/login", "api", "login_failed")
            t += self.rng.uniform(5, 20)
        self.emit(out, v, t, "POST", "/api/v1/sessions", 200, 312, SITE + "/login", "api", "login")
        v.logged_in = True
        return t

    def signup(self, out: list[Rec], v: Visitor, t: float, ref: str) -> float:
        t += self.think()
        self.page(out, v, t, "/signup", ref, first=False)
        t += self.rng.uniform(20, 90)
        if self.rng.random() < 0.1:
            self.emit(out, v, t, "POST", "/api/v1/users", 422, 118, SITE + "/signup", "api", "signup_failed")
            t += self.rng.uniform(10, 40)
        v.account, self.next_user = f"u{self.next_user}", self.next_user + 1
        self.emit(out, v, t, "POST", "/api/v1/users", 201, 297, SITE + "/signup", "api", "signup")
        v.logged_in = True  # signing up logs the new user in: later requests carry the user name
        return t

    def checkout(self, out: list[Rec], v: Visitor, t: float, ref: str) -> float:
        rng = self.rng
        t += self.think()
        self.page(out, v, t, "/cart", ref, first=False)
        if not v.logged_in:
            t = self.login(out, v, t, SITE + "/cart") if v.account else self.signup(out, v, t, SITE + "/cart")
        t += self.think()
        self.page(out, v, t, "/checkout", SITE + "/cart", first=False)
        t += rng.uniform(30, 180)
        if rng.random() < 0.05:
            self.emit(out, v, t, "POST", "/api/v1/orders", 502, 166, SITE + "/checkout", "api", "order_failed")
            t += rng.uniform(5, 30)
        order, self.next_order = self.next_order, self.next_order + rng.randint(1, 4)
        self.emit(out, v, t, "POST", "/api/v1/orders", 201, 642, SITE + "/checkout", "api", "order")
        t += rng.uniform(0.5, 2)
        self.page(out, v, t, f"/orders/{order}/confirmation", SITE + "/checkout", first=False)
        return t

    def app_session(self, v: Visitor, t: float) -> list[Rec]:
        out: list[Rec] = []
        for i in range(self.rng.randint(2, 6)):
            t += self.rng.uniform(5, 90) if i else 0
            self.emit(out, v, t, "GET", f"/api/v1/products?category={self.rng.choice(CATEGORIES)}&page=1", 200,
                      self.rng.randint(2_000, 9_000), "-", "api")
        if self.rng.random() < 0.4:
            self.emit(out, v, t + self.rng.uniform(5, 60), "POST", "/api/v1/cart/items", 201, 87, "-", "api", "cart_add")
        return out


def _session_starts(rng: random.Random, n: int, start: float, span: float, shift: int) -> list[float]:
    """`n` session start times over the span, following a day curve in the shop's local time."""
    out: list[float] = []
    while len(out) < n:
        t = start + 60 + rng.random() * (span - 3 * 3600)
        h = ((t + shift) % 86400) / 3600
        w = 0.08 if h < 6 else 0.5 if h < 9 else 0.8 if h < 18 else 1.0 if h < 23 else 0.3
        if rng.random() < w:
            out.append(t)
    return sorted(out)


def simulate(lines: int, seed: int = 0, *, start: datetime | None = None, days: int = 3,
             utc_offset: str = DEFAULT_OFFSET) -> ShopLog:
    """Simulate the shop for `days` days and render exactly `lines` nginx combined lines."""
    rng = random.Random(seed)
    start_dt = start or DEFAULT_START
    t_start, span = start_dt.timestamp(), days * 86400.0
    clock = ClfClock(start_dt, days, utc_offset)
    sim = _Sim(rng)
    human_budget = round(lines * HUMAN_SHARE)
    starts = _session_starts(rng, math.ceil(human_budget / LINES_PER_SESSION * 1.1) + 2, t_start, span, clock.shift)
    sessions: list[tuple[str, list[Rec]]] = []
    for t0 in starts:
        v = sim.pick_visitor(t0)
        entry = rng.choices(ENTRIES, ENTRY_W)[0]
        recs = sim.session(v, t0, entry)
        v.last_end = recs[-1].ts
        sessions.append(("app" if v.app else entry, recs))
    # Trim whole sessions (random ones, not the last days) until the people's lines fit the budget.
    total = sum(len(r) for _, r in sessions)
    order = list(range(len(sessions)))
    rng.shuffle(order)
    dropped = set()
    for i in order:
        if total <= human_budget:
            break
        total -= len(sessions[i][1])
        dropped.add(i)
    kept = [s for i, s in enumerate(sessions) if i not in dropped]
    records = [r for _, recs in kept for r in recs]
    malformed = round(lines * MALFORMED_SHARE) if lines >= 400 else 0
    health = round(lines * HEALTH_SHARE)
    noise = 3 * max(1, lines // 1500) if lines >= 300 else 0
    bots = lines - len(records) - health - noise - malformed
    others = shopbots.background(rng, t_start, span, bots=bots, health=health, noise=noise, malformed=malformed,
                                 clock=clock)
    records.extend(others)
    for r in records:  # a few requests are logged late (slow upstream), so the file is not strictly sorted
        if r.raw is None and rng.random() < 0.004:
            r.wts = r.ts + rng.uniform(1, 4)
    records.sort(key=lambda r: (r.wts, r.ts))
    rendered = [r.render(clock) for r in records]
    truth = compute_truth(records, kept, seed=seed, lines=lines, start=start_dt, days=days, utc_offset=utc_offset)
    return ShopLog(records, rendered, truth, t_start, span)
