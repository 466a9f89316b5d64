"""Pools of pre-rendered line pieces for the combined benchmark log, and its quirky lines.

A combined line is `head + timestamp + request + referer + tail`:
`203.0.113.9 - - [` + `10/Oct/2026:13:55:36 +0200` + `] "GET /x HTTP/1.1" 200 123 "` +
`https://www.google.com/` + `" "Mozilla/5.0 …"\\n`. Building the pieces once and sampling them
per line is what makes the generator fast (no formatting per line beyond concatenation).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

if __package__:
    from .logpools import load_user_agents, random_ipv4, random_ipv6
else:
    from logpools import load_user_agents, random_ipv4, random_ipv6

SITE = "https://www.example.com"
CATEGORIES = ("shoes", "dresses", "jackets", "accessories", "bags", "kitchen", "electronics", "gifts", "sale")
WORDS = ("red", "dress", "running", "shoes", "usb-c", "cable", "rain", "jacket", "linen", "shirt", "wool", "socks",
         "espresso", "mug", "gift", "for", "dad", "backpack", "leather", "wallet", "summer", "sale", "kids", "boots")
SLUGS = ("how-we-ship", "spring-lookbook", "caring-for-leather", "size-guide", "our-story", "gift-guide-2026",
         "new-arrivals", "behind-the-seams", "sustainable-cotton", "five-ways-to-wear-linen")
UTM_SETS = (
    "utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale",
    "utm_source=google&utm_medium=cpc&utm_campaign=brand_search&utm_term=example+shop",
    "utm_source=facebook&utm_medium=social&utm_campaign=spring_drop&utm_content=carousel_2",
    "utm_source=instagram&utm_medium=social&utm_campaign=influencer_q1",
    "utm_source=partner_site&utm_medium=affiliate&utm_campaign=spring_sale",
    "utm_source=bing&utm_medium=cpc&utm_campaign=generic_shoes",
)
SEARCH_REFS = ("https://www.google.com/", "https://www.google.de/", "https://www.google.co.uk/", "https://www.bing.com/",
               "https://duckduckgo.com/", "https://www.ecosia.org/", "https://search.yahoo.com/", "https://yandex.ru/",
               "https://www.baidu.com/link?url=Xk2mZ9")
SOCIAL_REFS = ("https://l.facebook.com/", "https://www.facebook.com/", "https://t.co/Xa93kZq1", "https://www.instagram.com/",
               "https://www.linkedin.com/", "https://www.reddit.com/r/BuyItForLife/comments/1b2c3d/leather_boots/",
               "https://news.ycombinator.com/", "https://www.pinterest.com/", "android-app://com.google.android.gm/")
OTHER_REFS = ("https://blog.example.org/gift-guide-2026/", "https://deals.example.net/spring", "https://github.com/example/shop",
              "https://forum.example.com/t/which-boots/1234", "https://en.wikipedia.org/wiki/Linen", "http://localhost:3000/")


@dataclass
class Pools:
    """Pre-rendered pieces and cumulative weights for `random.choices`."""

    heads: list[str]
    tails: list[str]
    visitor_cum: list[float]
    requests: list[str]
    referers: list[str]
    referer_cum: list[float]


def _query(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.35:
        return rng.choice(UTM_SETS)
    if r < 0.5:
        return f"gclid=Cj0KCQiA{rng.getrandbits(64):016x}_BwE"
    if r < 0.6:
        return f"fbclid=IwAR{rng.getrandbits(80):020x}"
    if r < 0.75:
        return f"page={rng.randint(2, 40)}"
    if r < 0.85:
        return f"sort={rng.choice(('price', 'new', 'rating'))}&dir={rng.choice(('asc', 'desc'))}"
    return f"ref={rng.choice(('home', 'footer', 'banner', 'mail'))}&{rng.choice(UTM_SETS)}"


def _target(rng: random.Random) -> tuple[str, str, str]:
    """(method, target, kind) of one request; kind drives the status and size."""
    r = rng.random()
    if r < 0.33:
        a = rng.random()
        path = (f"/static/js/app.{rng.getrandbits(24):06x}.js" if a < 0.2 else
                f"/static/css/main.{rng.getrandbits(24):06x}.css" if a < 0.35 else
                f"/images/products/{rng.randint(1000, 4999)}.{rng.choice(('jpg', 'png', 'webp'))}" if a < 0.8 else
                rng.choice(("/favicon.ico", "/apple-touch-icon.png", "/fonts/inter-var.woff2", "/static/img/logo.svg")))
        return ("HEAD" if rng.random() < 0.01 else "GET"), path, "static"
    if r < 0.7:
        a = rng.random()
        path = ("/" if a < 0.15 else
                f"/products/{rng.randint(1000, 4999)}" if a < 0.5 else
                f"/category/{rng.choice(CATEGORIES)}" if a < 0.65 else
                f"/blog/{rng.choice(SLUGS)}" if a < 0.8 else
                f"/search?q={'+'.join(rng.sample(WORDS, rng.randint(1, 3)))}" if a < 0.9 else
                rng.choice(("/about", "/contact", "/cart", "/checkout", "/login", "/account/orders", "/blog/page/2")))
        if "?" not in path and rng.random() < 0.25:
            path += "?" + _query(rng)
        return ("HEAD" if rng.random() < 0.02 else "GET"), path, "page"
    if r < 0.88:
        a = rng.random()
        if a < 0.4:
            return "GET", f"/api/v1/products?category={rng.choice(CATEGORIES)}&page={rng.randint(1, 5)}", "api"
        if a < 0.55:
            return "GET", f"/api/v1/products/{rng.randint(1000, 4999)}", "api"
        if a < 0.75:
            return "POST", rng.choice(("/api/v1/cart/items", "/api/v1/events", "/graphql", "/api/v1/sessions")), "api"
        return rng.choice(("PUT", "DELETE", "PATCH", "OPTIONS")), f"/api/v1/cart/items/{rng.randint(1, 99999)}", "api"
    if r < 0.95:
        return "GET", rng.choice(("/robots.txt", "/sitemap.xml", "/sitemap-products.xml", "/feed.xml", "/rss")), "feed"
    if r < 0.99:
        return (rng.choice(("GET", "GET", "POST")),
                rng.choice(("/wp-login.php", "/.env", "/xmlrpc.php", "/.git/config", "/phpmyadmin/index.php",
                            "/cgi-bin/luci/;stok=/locale", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
                            "/admin/.env", "/owa/auth/logon.aspx")), "probe")
    return "GET", rng.choice(("/ws", "/healthz", "/server-status")), "misc"


STATUS = {  # kind -> (statuses, weights)
    "static": ((200, 304, 206, 404), (80, 16, 2, 2)),
    "page": ((200, 301, 302, 304, 404, 500, 502, 503, 504, 499), (82, 3, 3, 4, 5, 0.5, 0.8, 0.5, 0.3, 0.9)),
    "api": ((200, 201, 204, 400, 401, 403, 404, 409, 422, 429, 500, 502), (60, 12, 6, 4, 4, 2, 4, 1, 2, 2, 1, 2)),
    "feed": ((200, 304, 404), (80, 15, 5)),
    "probe": ((404, 403, 400, 444), (85, 8, 4, 3)),
    "misc": ((101, 200, 403), (40, 40, 20)),
}


def _request(rng: random.Random) -> str:
    method, target, kind = _target(rng)
    statuses, weights = STATUS[kind]
    status = rng.choices(statuses, weights)[0]
    if status in (304, 204, 101):
        size = rng.choice(("0", "-"))  # nginx logs 0, Apache %b logs "-"
    elif status >= 400:
        size = str(rng.randint(150, 600))
    elif kind == "static":
        size = str(int(rng.lognormvariate(9.5, 1.3)))
    else:
        size = str(int(rng.lognormvariate(9.8, 0.9)))
    proto = rng.choices(("HTTP/1.1", "HTTP/2.0", "HTTP/1.0"), (74, 23, 3))[0]
    return f'] "{method} {target} {proto}" {status} {size} "'


def _referer(rng: random.Random) -> tuple[str, float]:
    r = rng.random()
    if r < 0.4:
        return "-", 40.0
    if r < 0.75:
        _, target, _ = _target(rng)
        return SITE + target, 0.1
    if r < 0.88:
        return rng.choice(SEARCH_REFS), 3.0
    if r < 0.95:
        return rng.choice(SOCIAL_REFS), 1.0
    return rng.choice(OTHER_REFS), 0.5


def build_pools(rng: random.Random, lines: int) -> Pools:
    """Visitors, requests and referrers sized for a run of `lines` lines."""
    uas = load_user_agents()
    by_kind: dict[str, list] = {}
    for u in uas:
        by_kind.setdefault(u.kind, []).append(u)
    cum = {k: list(accumulate(u.weight for u in v)) for k, v in by_kind.items()}
    n_visitors = max(3000, min(60_000, lines // 40))
    heads, tails, weights = [], [], []
    kinds = ("desktop", "mobile", "tablet", "bot", "tool", "feed", "other")
    kind_w = (46, 30, 5, 11, 4, 3, 1)
    for i in range(n_visitors):
        kind = rng.choices(kinds, kind_w)[0]
        pool = by_kind[kind]
        ua = rng.choices(pool, cum_weights=cum[kind])[0].ua if rng.random() > 0.002 else "-"
        ip = random_ipv6(rng) if rng.random() < 0.07 else random_ipv4(rng)
        user = f"u{rng.randint(1000, 99999)}" if kind in ("desktop", "mobile") and rng.random() < 0.03 else "-"
        heads.append(f"{ip} - {user} [")
        tails.append(f'" "{ua}"\n')
        weights.append(1.0 / (i + 10) ** 0.9 * (4.0 if kind in ("bot", "tool") else 1.0))
    rng.shuffle(weights)  # popularity must not follow creation order
    n_req = max(2000, min(150_000, lines // 8))
    requests = [_request(rng) for _ in range(n_req)]
    refs = [_referer(rng) for _ in range(max(500, min(20_000, lines // 50)))]
    return Pools(heads, tails, list(accumulate(weights)), requests,
                 [r for r, _ in refs], list(accumulate(w for _, w in refs)))


# Quirky but valid lines. Each takes (rng, head, timestamp) and returns a whole line.
def _q(request: str, status: str, size: str, ref: str = "-", ua: str = "-") -> Callable[..., str]:
    return lambda rng, head, ts: f'{head}{ts}] "{request}" {status} {size} "{ref}" "{ua}"\n'


CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
QUIRKS: dict[str, Callable[[random.Random, str, str], str]] = {
    "dash_request": _q("-", "400", "0"),
    "empty_request": _q("", "400", "0"),
    "tls_handshake": _q(r"\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03\xA7\x1E\xBB}\x8F\x04", "400", "157"),
    "http09_request": _q("GET /", "200", "612"),
    "options_star": _q("OPTIONS * HTTP/1.1", "200", "0"),
    "absolute_form": _q("GET http://www.example.com/ HTTP/1.1", "200", "612", ua="Mozilla/5.0 zgrab/0.x"),
    "connect_method": _q("CONNECT www.google.com:443 HTTP/1.1", "400", "173", ua="Go-http-client/1.1"),
    "nginx_x22_ua": _q("POST /api/v1/cart/items HTTP/1.1", "201", "87",
                       ua=r"Dalvik/2.1.0 (Linux; U; Android 5.1; Alba 10\x22 Build/LMY47I)"),
    "apache_escaped_quote": _q("GET /products/1042 HTTP/1.1", "200", "18211", ref=r"https://forum.example.com/t/\"best\"-boots",
                               ua=r"Mozilla/5.0 (compatible; \"Nutch\"; +http://example.org/bot)"),
    "unicode": _q("GET /search?q=café+größe HTTP/1.1", "200", "9811", ref="https://www.google.de/search?q=größe",
                  ua="Mozilla/5.0 (Linux; Android 14; 小米 13) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"),
    "non_utf8_path": _q("GET /caf\udce9/men\udcfc HTTP/1.1", "404", "169", ua=CHROME),
    "long_url": lambda rng, head, ts: (
        f'{head}{ts}] "GET /search?q={"+".join(rng.choices(WORDS, k=rng.randint(300, 1200)))}&'
        f'{rng.choice(UTM_SETS)} HTTP/1.1" 414 0 "-" "{CHROME}"\n'),
    "unterminated_ua": lambda rng, head, ts: f'{head}{ts}] "GET / HTTP/1.1" 200 612 "-" "{CHROME[:40]}\n',
}
