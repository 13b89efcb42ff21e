"""nftables for skiff: a small ctypes binding to libnftables' JSON interface, and skiff's own table.

Why libnftables through ctypes: it is the library behind `nft` itself (the same parser, the same
JSON schema as `nft -j`), it needs no process start (running `nft` costs a fork+exec, ~3.5 ms here;
a call here is well under a millisecond for a small table), and a JSON document submitted in one
call is one netlink batch, hence one atomic transaction: all of it applies or none of it does.
python3-nftables wraps the same calls but is not installable into a venv; the eight functions
used here are stable since nftables 0.9.

skiff owns one table, `inet skiff` by default, and touches nothing else: it never edits another
table or chain and never changes a policy (its own base chains are all `policy accept`).
Every rule it adds carries the comment ``skiff:<owner>`` so that ``remove(owner)`` can find and
delete exactly that owner's rules, by handle, in one transaction.

Only IPv4 is published and masqueraded for now (``dnat ip to``; ``meta nfproto ipv4`` where no
IPv4 address match implies it).

Import cost matters (this module is on the container start path): only ``os`` and skiff's
error classes at module level; ctypes, fcntl and the JSON codec are loaded on first use.
"""

from __future__ import annotations

import os

from ...errors import InvalidArgument, SkiffError

# nft_ctx_output_flags, include/nftables/libnftables.h (nftables 1.0.6)
NFT_CTX_OUTPUT_REVERSEDNS = 1 << 0
NFT_CTX_OUTPUT_SERVICE = 1 << 1
NFT_CTX_OUTPUT_STATELESS = 1 << 2
NFT_CTX_OUTPUT_HANDLE = 1 << 3
NFT_CTX_OUTPUT_JSON = 1 << 4
NFT_CTX_OUTPUT_ECHO = 1 << 5
NFT_CTX_OUTPUT_GUID = 1 << 6
NFT_CTX_OUTPUT_NUMERIC_PROTO = 1 << 7
NFT_CTX_DEFAULT = 0

LIBRARY = "libnftables.so.1"
COMMENT_PREFIX = "skiff:"
COMMENT_MAX = 127  # NFTNL_UDATA_COMMENT_MAXLEN is 128 bytes, NUL included

# Chain priorities by name (nft's `priority dstnat` etc.), as listings show them.
PRIO_DSTNAT = -100
PRIO_FILTER = 0
PRIO_SRCNAT = 100

# name -> (type, hook, priority). All `policy accept`.
BASE_CHAINS = {
    "prerouting": ("nat", "prerouting", PRIO_DSTNAT),
    "output": ("nat", "output", PRIO_DSTNAT),
    "postrouting": ("nat", "postrouting", PRIO_SRCNAT),
    "forward": ("filter", "forward", PRIO_FILTER),
}

FAMILIES = ("inet", "ip")
PROTOS = ("tcp", "udp")


class NftError(SkiffError):
    """nftables refused a command. ``detail`` is everything libnftables said."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail

    @property
    def not_found(self) -> bool:
        return "No such file or directory" in self.detail


# --------------------------------------------------------------------------------------------
# The binding

_lib = None


def _load(library: str = LIBRARY):
    global _lib
    if _lib is not None:
        return _lib
    import ctypes
    try:
        lib = ctypes.CDLL(library, use_errno=True)
    except OSError as e:
        raise SkiffError(f"nftables: cannot load {library} ({e}); install libnftables1") from None
    vp, ci, cu, cp = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_char_p
    for name, res, args in (
        ("nft_ctx_new", vp, [ctypes.c_uint32]),
        ("nft_ctx_free", None, [vp]),
        ("nft_ctx_output_set_flags", None, [vp, cu]),
        ("nft_ctx_buffer_output", ci, [vp]),
        ("nft_ctx_buffer_error", ci, [vp]),
        ("nft_ctx_get_output_buffer", cp, [vp]),
        ("nft_ctx_get_error_buffer", cp, [vp]),
        ("nft_run_cmd_from_buffer", ci, [vp, cp]),
    ):
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    _lib = lib
    return lib


def parse_error(text: str) -> str:
    """The first error line of libnftables' error buffer, without its location prefix.

    libnftables writes ``internal:0:0-0: Error: Could not process rule: ...`` for JSON input and
    ``Error: syntax error, ...`` followed by the offending line and carets for text input.
    """
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    for ln in lines:
        i = ln.find("Error: ")
        if i >= 0:
            return ln[i + 7:].strip()
    return lines[0] if lines else "unknown error"


class Nft:
    """One libnftables context, JSON output, output and errors buffered. Not thread-safe.

    ``run`` takes nft's text syntax (``"list tables"``) or a JSON document (a dict such as
    ``{"nftables": [{"add": {...}}, ...]}``); a JSON document is one atomic transaction.
    It returns the parsed JSON output, or None when nftables printed nothing (``add``, ``delete``).
    """

    def __init__(self, library: str = LIBRARY):
        self._library = library
        self._ctx = None

    def _context(self):
        if self._ctx is None:
            lib = _load(self._library)
            ctx = lib.nft_ctx_new(NFT_CTX_DEFAULT)
            if not ctx:
                raise SkiffError("nftables: nft_ctx_new failed")
            lib.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON)
            if lib.nft_ctx_buffer_output(ctx) or lib.nft_ctx_buffer_error(ctx):
                lib.nft_ctx_free(ctx)
                raise SkiffError("nftables: cannot buffer libnftables output")
            self._ctx = ctx
        return self._ctx

    def run(self, cmd: str | dict) -> dict | None:
        from ..fastjson import dumps, loads
        text = cmd if isinstance(cmd, str) else dumps(cmd)
        ctx = self._context()
        lib = _lib
        rc = lib.nft_run_cmd_from_buffer(ctx, text.encode())
        # Reading a buffer also rewinds it: always read both so the next command starts clean.
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
        err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
        if rc != 0:
            raise NftError(f"nftables: {parse_error(err)}", err)
        if not out.strip():
            return None
        return loads(out)

    def close(self) -> None:
        if self._ctx is not None and _lib is not None:
            _lib.nft_ctx_free(self._ctx)
        self._ctx = None

    def __enter__(self) -> "Nft":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


# --------------------------------------------------------------------------------------------
# Pure builders of nftables JSON (schema of nftables 1.0.6, `man libnftables-json`)

def comment_for(owner: str) -> str:
    if not owner or not isinstance(owner, str):
        raise InvalidArgument("nftables: a rule owner must be a non-empty string")
    comment = COMMENT_PREFIX + owner
    if len(comment.encode()) > COMMENT_MAX or not comment.isprintable():
        raise InvalidArgument(f"nftables: owner {owner!r} is not printable or longer than "
                              f"{COMMENT_MAX - len(COMMENT_PREFIX)} bytes")
    return comment


def owner_of(comment: str | None) -> str | None:
    """The owner a rule comment names, or None for a comment that is not skiff's."""
    if comment and comment.startswith(COMMENT_PREFIX):
        return comment[len(COMMENT_PREFIX):]
    return None


def check_ipv4(addr: str, what: str = "address") -> str:
    import _socket
    try:
        _socket.inet_pton(_socket.AF_INET, addr)
    except (OSError, TypeError):
        if isinstance(addr, str) and ":" in addr:
            raise InvalidArgument(f"nftables: {what} {addr}: only IPv4 is supported for now") from None
        raise InvalidArgument(f"nftables: {what} {addr!r} is not an IPv4 address") from None
    return addr


def check_port(port, what: str = "port") -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidArgument(f"nftables: {what} {port!r} is not a port number (1-65535)")
    return port


def check_ifname(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name.encode()) <= 15 or "/" in name or \
            not name.isprintable() or any(c.isspace() for c in name):
        raise InvalidArgument(f"nftables: {name!r} is not an interface name (1-15 characters)")
    return name


def ipv4_prefix(subnet: str) -> tuple[str, int]:
    """``"10.88.0.1/16"`` -> ``("10.88.0.0", 16)``: the network address, as nft lists it."""
    import _socket
    addr, sep, length = subnet.partition("/") if isinstance(subnet, str) else ("", "", "")
    check_ipv4(addr, "subnet")
    if not sep or not length.isdigit() or not 1 <= int(length) <= 32:
        raise InvalidArgument(f"nftables: subnet {subnet!r} is not an IPv4 CIDR such as 10.88.0.0/16")
    n = int(length)
    value = int.from_bytes(_socket.inet_pton(_socket.AF_INET, addr), "big")
    value &= (0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF
    return _socket.inet_ntop(_socket.AF_INET, value.to_bytes(4, "big")), n


def table_obj(family: str, table: str) -> dict:
    return {"table": {"family": family, "name": table}}


def chain_obj(family: str, table: str, name: str, type_: str, hook: str, prio: int,
              policy: str = "accept") -> dict:
    return {"chain": {"family": family, "table": table, "name": name, "type": type_,
                      "hook": hook, "prio": prio, "policy": policy}}


def base_chain_objs(family: str, table: str) -> list[dict]:
    return [chain_obj(family, table, name, t, h, p) for name, (t, h, p) in BASE_CHAINS.items()]


def match(left: dict, right, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def payload(protocol: str, field: str) -> dict:
    return {"payload": {"protocol": protocol, "field": field}}


def meta(key: str) -> dict:
    return {"meta": {"key": key}}


def prefix(addr: str, length: int):
    return addr if length == 32 else {"prefix": {"addr": addr, "len": length}}


def rule_obj(family: str, table: str, chain: str, expr: list, owner: str) -> dict:
    return {"rule": {"family": family, "table": table, "chain": chain,
                     "comment": comment_for(owner), "expr": expr}}


def _daddr_matches(family: str, host_ip: str | None) -> list[dict]:
    """Which destination a published port answers on: a given IPv4 address, or any local one."""
    if host_ip in (None, "", "0.0.0.0"):
        m = [match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")]
        # In an inet table nothing else restricts the rule to IPv4: say it (nft keeps it listed).
        return [match(meta("nfproto"), "ipv4")] + m if family == "inet" else m
    return [match(payload("ip", "daddr"), check_ipv4(host_ip, "host address"))]


def dnat_rule(family: str, table: str, chain: str, owner: str, host_ip: str | None,
              host_port: int, proto: str, dest_ip: str, dest_port: int) -> dict:
    """``[ip daddr HOST_IP | meta nfproto ipv4 fib daddr type local] PROTO dport HOST_PORT
    dnat ip to DEST_IP:DEST_PORT comment "skiff:OWNER"``"""
    if proto not in PROTOS:
        raise InvalidArgument(f"nftables: protocol {proto!r} is not tcp or udp")
    to = {"addr": check_ipv4(dest_ip, "container address"),
          "port": check_port(dest_port, "container port")}
    if family == "inet":  # `dnat ip to`; an ip table has only one address family to name
        to = {"family": "ip", **to}
    expr = _daddr_matches(family, host_ip) + [
        match(payload(proto, "dport"), check_port(host_port, "host port")),
        {"dnat": to},
    ]
    return rule_obj(family, table, chain, expr, owner)


def loopback_masquerade_rule(family: str, table: str, owner: str, bridge: str, proto: str,
                             dest_ip: str, dest_port: int, chain: str = "postrouting") -> dict:
    """``ip saddr 127.0.0.0/8 oifname BRIDGE ip daddr DEST_IP PROTO dport DEST_PORT masquerade``

    Connections to 127.0.0.1:HOSTPORT keep their loopback source after DNAT; the container
    could not answer them. Narrowed to the published destination, so each binding has its own
    rule and removing one never affects another."""
    if proto not in PROTOS:
        raise InvalidArgument(f"nftables: protocol {proto!r} is not tcp or udp")
    expr = [
        match(payload("ip", "saddr"), prefix("127.0.0.0", 8)),
        match(meta("oifname"), check_ifname(bridge)),
        match(payload("ip", "daddr"), check_ipv4(dest_ip, "container address")),
        match(payload(proto, "dport"), check_port(dest_port, "container port")),
        {"masquerade": None},
    ]
    return rule_obj(family, table, chain, expr, owner)


def publish_rules(family: str, table: str, owner: str, host_ip: str | None, host_port: int,
                  proto: str, dest_ip: str, dest_port: int, bridge: str) -> list[dict]:
    """The rules one published port needs: DNAT in prerouting (other hosts) and in output (this
    host), and for loopback bindings the masquerade of 127.0.0.0/8 towards the bridge."""
    check_ifname(bridge)
    args = (owner, host_ip, host_port, proto, dest_ip, dest_port)
    rules = [dnat_rule(family, table, "prerouting", *args),
             dnat_rule(family, table, "output", *args)]
    if host_ip in (None, "", "0.0.0.0") or host_ip.startswith("127."):
        rules.append(loopback_masquerade_rule(family, table, owner, bridge, proto, dest_ip,
                                              dest_port))
    return rules


def masquerade_subnet_rule(family: str, table: str, owner: str, subnet: str, bridge: str,
                           chain: str = "postrouting") -> dict:
    """``ip saddr SUBNET oifname != BRIDGE masquerade``: outbound NAT of a bridge network."""
    addr, n = ipv4_prefix(subnet)
    expr = [
        match(payload("ip", "saddr"), prefix(addr, n)),
        match(meta("oifname"), check_ifname(bridge), "!="),
        {"masquerade": None},
    ]
    return rule_obj(family, table, chain, expr, owner)


def isolation_rule(family: str, table: str, owner: str, subnet: str, bridge: str,
                   chain: str = "forward") -> dict:
    """``iifname != BRIDGE ip daddr SUBNET ct state new,invalid ct status & dnat == 0 drop``:
    no connection into a network's containers is started from another network or from outside
    (docker's isolation chains), but published ports (DNAT) still are; the replies to the
    containers' own connections (masqueraded, coming back on another interface) pass."""
    addr, n = ipv4_prefix(subnet)
    expr = [
        match(meta("iifname"), check_ifname(bridge), "!="),
        match(payload("ip", "daddr"), prefix(addr, n)),
        match({"ct": {"key": "state"}}, ["new", "invalid"], "in"),
        match({"ct": {"key": "status"}}, "dnat", "!"),  # the flag is not set ("!=" compares the whole value)
        {"drop": None},
    ]
    return rule_obj(family, table, chain, expr, owner)


def forward_rules(family: str, table: str, owner: str, bridge: str,
                  chain: str = "forward") -> list[dict]:
    """``iifname BRIDGE accept`` and ``oifname BRIDGE ct state established,related accept``."""
    check_ifname(bridge)
    return [
        rule_obj(family, table, chain, [match(meta("iifname"), bridge), {"accept": None}], owner),
        rule_obj(family, table, chain, [match(meta("oifname"), bridge),
                                        match({"ct": {"key": "state"}}, ["established", "related"],
                                              "in"),
                                        {"accept": None}], owner),
    ]


def delete_rule_cmd(rule: dict) -> dict:
    """A delete command for a rule as listed (with its handle)."""
    return {"delete": {"rule": {"family": rule["family"], "table": rule["table"],
                                "chain": rule["chain"], "handle": rule["handle"]}}}


def transaction(commands: list[dict]) -> dict:
    return {"nftables": commands}


def adds(objs: list[dict]) -> list[dict]:
    return [{"add": o} for o in objs]


def rule_key(rule: dict) -> tuple:
    """What makes two rules the same rule, listed or built: chain, comment and expressions."""
    from ..fastjson import dumps
    return (rule.get("chain"), rule.get("comment"), dumps(rule.get("expr"), sort_keys=True))


def rules_in(listing: dict | None) -> list[dict]:
    return [o["rule"] for o in (listing or {}).get("nftables", ()) if "rule" in o]


# --------------------------------------------------------------------------------------------
# skiff's table

class _Flock:
    def __init__(self, path: str | None):
        self.path = path
        self.fd = -1

    def __enter__(self):
        if self.path:
            import fcntl
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.fd >= 0:
            os.close(self.fd)  # closing the only descriptor releases the flock
            self.fd = -1


class SkiffTable:
    """skiff's own nftables table and the rules it owns.

    ``lock_path`` (for example ``<root>/locks/nft.lock``) serialises the list-then-modify steps
    between processes; without it, concurrent callers may add duplicate rules (never lose any).
    Every modifying method is idempotent: safe to repeat, for a reconcile loop or after a crash.
    """

    def __init__(self, nft: Nft | None = None, family: str = "inet", name: str = "skiff",
                 lock_path: str | None = None):
        if family not in FAMILIES:
            raise InvalidArgument(f"nftables: family {family!r} is not one of {', '.join(FAMILIES)}")
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise InvalidArgument(f"nftables: table name {name!r} is not a plain name")
        self.nft = nft if nft is not None else Nft()
        self.family = family
        self.name = name
        self.lock_path = lock_path

    # -- reading --------------------------------------------------------------------------

    def exists(self) -> bool:
        out = self.nft.run("list tables")
        return any(o.get("table", {}).get("family") == self.family
                   and o["table"].get("name") == self.name
                   for o in (out or {}).get("nftables", ()))

    def listing(self) -> dict | None:
        """``nft -j list table FAMILY NAME``, or None when the table does not exist."""
        try:
            return self.nft.run({"nftables": [{"list": table_obj(self.family, self.name)}]})
        except NftError as e:
            if e.not_found:
                return None
            raise

    def rules(self, owner: str | None = None) -> list[dict]:
        """The table's rules as listed (with ``handle``), only ``owner``'s when given."""
        rules = rules_in(self.listing())
        if owner is None:
            return rules
        comment = comment_for(owner)
        return [r for r in rules if r.get("comment") == comment]

    def chains(self) -> list[dict]:
        return [o["chain"] for o in (self.listing() or {}).get("nftables", ()) if "chain" in o]

    # -- writing --------------------------------------------------------------------------

    def _ensure_cmds(self) -> list[dict]:
        # `add` (unlike `create`) does nothing for a table or chain that already exists.
        return adds([table_obj(self.family, self.name)] + base_chain_objs(self.family, self.name))

    def _run(self, commands: list[dict], what: str) -> None:
        try:
            self.nft.run(transaction(commands))
        except NftError as e:
            raise NftError(f"nftables: {what}: {parse_error(e.detail)}", e.detail) from None

    def ensure(self) -> None:
        """Create the table and its base chains if missing (all `policy accept`)."""
        with _Flock(self.lock_path):
            self._run(self._ensure_cmds(), f"creating table {self.family} {self.name}")

    def add_rules(self, rules: list[dict], what: str = "adding rules", verb: str = "add") -> int:
        """Ensure the table and add those of ``rules`` that are not there yet, in one transaction.
        Returns how many were added."""
        with _Flock(self.lock_path):
            present = {rule_key(r) for r in rules_in(self.listing())}
            missing, seen = [], set()
            for r in rules:
                key = rule_key(r["rule"])
                if key not in present and key not in seen:
                    missing.append(r)
                    seen.add(key)
            if missing:
                self._run(self._ensure_cmds() + [{verb: o} for o in missing], what)
            return len(missing)

    def publish(self, owner: str, host_ip: str | None, host_port: int, proto: str,
                dest_ip: str, dest_port: int, bridge: str) -> int:
        """Publish ``host_ip:host_port/proto`` (any local IPv4 address when host_ip is None or
        0.0.0.0) to ``dest_ip:dest_port`` behind ``bridge``. Idempotent; returns rules added."""
        rules = publish_rules(self.family, self.name, owner, host_ip, host_port, proto,
                              dest_ip, dest_port, bridge)
        where = f"{host_ip or '0.0.0.0'}:{host_port}/{proto} -> {dest_ip}:{dest_port}"
        return self.add_rules(rules, f"publishing {where}")

    def publish_many(self, owner: str, bindings: list[dict], dest_ip: str, bridge: str) -> int:
        """``publish`` for several bindings (dicts with host_ip, host_port, proto and
        container_port, as ports.parse_publish makes them) with one listing and one
        transaction: all of them are published or none is."""
        rules = []
        for b in bindings:
            rules += publish_rules(self.family, self.name, owner, b.get("host_ip") or None,
                                   b["host_port"], b.get("proto", "tcp"), dest_ip,
                                   b["container_port"], bridge)
        return self.add_rules(rules, f"publishing {len(bindings)} port(s) of {owner} to {dest_ip}")

    def masquerade_subnet(self, owner: str, subnet: str, bridge: str) -> int:
        """Outbound NAT for a bridge network's subnet. Idempotent."""
        rule = masquerade_subnet_rule(self.family, self.name, owner, subnet, bridge)
        return self.add_rules([rule], f"masquerading {subnet} from {bridge}")

    def isolate(self, owner: str, subnet: str, bridge: str) -> int:
        """Drop forwarded traffic into ``subnet`` from anywhere but ``bridge`` (published
        ports excepted). Inserted at the head of the chain, before any accept."""
        rule = isolation_rule(self.family, self.name, owner, subnet, bridge)
        return self.add_rules([rule], f"isolating {subnet} on {bridge}", verb="insert")

    def accept_forward(self, owner: str, bridge: str) -> int:
        """Accept forwarded traffic from ``bridge`` and replies to it, in skiff's forward chain.

        nftables evaluates every base chain on a hook: an accept here does not override a drop
        in another table (docker's iptables FORWARD policy DROP, for instance)."""
        rules = forward_rules(self.family, self.name, owner, bridge)
        return self.add_rules(rules, f"accepting forwarded traffic of {bridge}")

    def remove(self, owner: str) -> int:
        """Delete every rule of ``owner``, by handle, in one transaction. Idempotent; returns
        how many rules were deleted."""
        comment = comment_for(owner)
        with _Flock(self.lock_path):
            for attempt in range(3):
                doomed = [r for r in rules_in(self.listing()) if r.get("comment") == comment]
                if not doomed:
                    return 0
                try:
                    self._run([delete_rule_cmd(r) for r in doomed], f"removing rules of {owner}")
                    return len(doomed)
                except NftError as e:
                    # A concurrent remover (no lock given) deleted one first: list again.
                    if not e.not_found or attempt == 2:
                        raise
        return 0

    def replace_rules(self, owner: str, rules: list[tuple[str, dict]],
                      what: str = "replacing rules") -> bool:
        """Make ``owner``'s rules exactly ``rules`` (``(verb, rule)`` pairs, verb add or insert):
        the old ones deleted and the new ones added in one transaction, so that no packet sees
        a half-changed set. Nothing is done (False) when they are already in place."""
        comment = comment_for(owner)
        for _, r in rules:
            if r["rule"].get("comment") != comment:
                raise InvalidArgument(f"nftables: a rule of {owner} must carry the comment {comment!r}")
        with _Flock(self.lock_path):
            cmds = _replace_rules_cmds(rules_in(self.listing()), rules, comment)
            if cmds is None:
                return False
            self._run(self._ensure_cmds() + cmds, what)
            return True

    def delete_table(self) -> bool:
        """Delete the whole table (tests, `skiff system reset`). False if it did not exist."""
        with _Flock(self.lock_path):
            try:
                self.nft.run(transaction([{"delete": table_obj(self.family, self.name)}]))
            except NftError as e:
                if e.not_found:
                    return False
                raise
            return True


# --------------------------------------------------------------------------------------------
# A Kubernetes pod network's host rules (the agent's pod bridge: skiff.agent.podruntime)

def cidr_set(cidrs: list[str]):
    """The right-hand side matching any of ``cidrs``, in the form nft lists it back (so that a
    listing compares equal to what was built): the intervals merged as nft merges an anonymous
    set's (sorted, adjacent and overlapping ones joined), each a prefix (or an address) when it
    is one, else a range; a set when more than one interval is left, else that interval alone."""
    import _socket

    def num(addr: str) -> int:
        return int.from_bytes(_socket.inet_pton(_socket.AF_INET, addr), "big")

    def text(n: int) -> str:
        return _socket.inet_ntop(_socket.AF_INET, n.to_bytes(4, "big"))
    nets = {ipv4_prefix(c) for c in cidrs}
    if not nets:
        raise InvalidArgument("nftables: an empty list of subnets")
    merged: list[list[int]] = []
    for lo, hi in sorted((num(a), num(a) + (1 << (32 - n)) - 1) for a, n in nets):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    items = []
    for lo, hi in merged:
        size = hi - lo + 1
        if size & (size - 1) == 0 and lo % size == 0:
            items.append(prefix(text(lo), 33 - size.bit_length()))
        else:
            items.append({"range": [text(lo), text(hi)]})
    return items[0] if len(items) == 1 else {"set": items}


def pod_network_rules(family: str, table: str, owner: str, subnet: str, bridge: str,
                      peers: list[str], peer_hosts: list[str] = ()) -> list[tuple[str, dict]]:
    """The host rules of a pod network (a node's podCIDR on its bridge) as ``(verb, rule)``
    pairs for :meth:`SkiffTable.replace_rules`; the agent puts them in place of the rules a
    plain bridge network gets (``masquerade_subnet_rule``, ``isolation_rule``, ``forward_rules``):

    - ``ip saddr SUBNET ip daddr != PEERS oifname != BRIDGE masquerade``: pod traffic leaving
      the node is masqueraded, but not towards the other nodes' pods (Kubernetes' flat pod
      network: a pod sees the other pod's own address);
    - ``iifname != BRIDGE ip daddr SUBNET ip saddr != PEERS+HOSTS ct state new ct status ! dnat
      drop`` (first in the chain): no new connection reaches the pods from elsewhere but from the
      other nodes and their pods, or through a DNAT (published ports, Services); replies to the
      pods' own connections pass;
    - the bridge network's forward accepts.

    ``peers``: the podCIDRs of the other nodes this node routes to; ``peer_hosts``: those nodes'
    own addresses (a node port's traffic arrives masqueraded to them). Either may be empty."""
    addr, n = ipv4_prefix(subnet)
    check_ifname(bridge)
    masq = [match(payload("ip", "saddr"), prefix(addr, n))]
    if peers:
        masq.append(match(payload("ip", "daddr"), cidr_set(peers), "!="))
    masq += [match(meta("oifname"), bridge, "!="), {"masquerade": None}]
    iso = [match(meta("iifname"), bridge, "!="), match(payload("ip", "daddr"), prefix(addr, n))]
    if peers or peer_hosts:
        iso.append(match(payload("ip", "saddr"), cidr_set(list(peers) + [f"{h}/32" for h in peer_hosts]), "!="))
    iso += [match({"ct": {"key": "state"}}, "new", "in"),
            match({"ct": {"key": "status"}}, "dnat", "!"),
            {"drop": None}]
    return ([("add", rule_obj(family, table, "postrouting", masq, owner)),
             ("insert", rule_obj(family, table, "forward", iso, owner))]
            + [("add", r) for r in forward_rules(family, table, owner, bridge)])


def _replace_rules_cmds(present: list[dict], rules: list[tuple[str, dict]], comment: str
                        ) -> list[dict] | None:
    """The commands that make ``comment``'s rules exactly ``rules``; None when they already are."""
    mine = [r for r in present if r.get("comment") == comment]
    if sorted(rule_key(r) for r in mine) == sorted(rule_key(r["rule"]) for _, r in rules):
        return None
    return [delete_rule_cmd(r) for r in mine] + [{verb: r} for verb, r in rules]
