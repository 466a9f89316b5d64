"""Integer group-by machinery in numpy for the report groupings (`groups.Grouping`).

Every group column is turned into *slots*: dense integers, 0 for null, 1… for the values, the
same across a scan (a string's `Interner` number + 1, an integer's `IntBook` number + 1). A group
key is then a slot (one column) or a `KeyBook` number (several); rows reduce to keys by
`np.bincount` and distinct values per key are sorted 64-bit (key, value) pairs. Nothing is hashed
per row: Acero's hash group-by cost ≈60 ns per row and column, a bincount ≈1 ns.

Sums stay exact: integers are summed in float64 only while no partial sum can reach 2**53, else
in 21-bit pieces (`int_sums`); `FloatSum` sums durations as whole microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EXACT = float(2**53)  # float64 sums of integers are exact below this
MICRO = 1_000_000
INT_VIEWS = {pa.date32(): pa.int32(), pa.date64(): pa.int64()}


def ints(array: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """An integer-like array (ints, bools, dates, timestamps) as int64 numpy values (0 where null)
    and its validity (None without nulls)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    type_ = array.type
    if pa.types.is_timestamp(type_) or pa.types.is_duration(type_) or type_ in INT_VIEWS:
        array = array.view(INT_VIEWS.get(type_, pa.int64()))
    elif pa.types.is_boolean(type_):
        array = array.cast(pa.int8())
    valid = None
    if array.null_count:
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        array = pc.fill_null(array, 0)
    return array.to_numpy(zero_copy_only=False).astype(np.int64, copy=False), valid


def floats(array: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """A float array as float64 numpy values (0 where null) and its validity (None without nulls)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    valid = None
    if array.null_count:
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        array = pc.fill_null(array, 0.0)
    return array.to_numpy(zero_copy_only=False).astype(np.float64, copy=False), valid


def from_ints(values: np.ndarray, valid: np.ndarray | None, type_: pa.DataType) -> pa.Array:
    """`ints` reversed: int64 values (and validity) as an array of `type_`."""
    mask = None if valid is None or valid.all() else ~valid
    if pa.types.is_timestamp(type_) or pa.types.is_duration(type_) or type_ in INT_VIEWS:
        view = INT_VIEWS.get(type_, pa.int64())
        return pa.array(values.astype(view.to_pandas_dtype()), view, mask=mask).view(type_)
    if pa.types.is_boolean(type_):
        return pa.array(values != 0, mask=mask)
    return pa.array(values, mask=mask).cast(type_)


def slots(codes: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Codes (int32, null for null) as slots: 0 for null, code + 1 otherwise."""
    if isinstance(codes, pa.ChunkedArray):
        codes = codes.combine_chunks()
    if codes.null_count:
        codes = pc.fill_null(codes, -1)
    # One pass: widened and offset together (the codes of a dictionary are read without a copy).
    return np.add(codes.to_numpy(zero_copy_only=False), 1, dtype=np.int64)


def distinct_sorted(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (np.unique is a hash table in numpy 2, 20× slower than a sort)."""
    values = np.sort(values)
    if len(values) > 1:
        values = values[np.concatenate(([True], values[1:] != values[:-1]))]
    return values


def unique_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values (sorted) and the index of every value among them."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.ones(len(values), bool)
    first[1:] = ordered[1:] != ordered[:-1]
    inverse = np.empty(len(values), np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def compact(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`unique_inverse` for integers: by a presence table over their range when it is small."""
    if len(values) == 0:
        return values, values
    lo, hi = int(values.min()), int(values.max())
    if hi - lo >= max(4 * len(values), 1 << 16):
        return unique_inverse(values)
    present = np.zeros(hi - lo + 1, bool)
    present[values - lo] = True
    position = np.cumsum(present) - 1
    return np.flatnonzero(present) + lo, position[values - lo]


def exact_weights(values: np.ndarray) -> np.ndarray | None:
    """Integers as float64 bincount weights when no sum of them can reach 2**53 (exact), else None."""
    weights = values.astype(np.float64)
    # Every partial sum is at most the sum of magnitudes (itself computed within far less than 2×).
    return weights if float(np.abs(weights).sum()) < EXACT / 2 else None


def int_sums(keys: np.ndarray, values: np.ndarray, size: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Exact int64 sums of `values` per key (wrapping as int64 does): one float64 bincount while
    no sum can reach 2**53 (`weights`: `exact_weights(values)` when known), else three of
    21-bit pieces."""
    if weights is None:
        weights = exact_weights(values)
    if weights is not None:
        return np.bincount(keys, weights=weights, minlength=size).astype(np.int64)
    unsigned = values.view(np.uint64)
    total = np.zeros(size, np.uint64)
    for shift in (0, 21, 42):
        piece = ((unsigned >> np.uint64(shift)) & np.uint64((1 << 22) - 1 if shift == 42 else (1 << 21) - 1))
        part = np.bincount(keys, weights=piece.astype(np.float64), minlength=size).astype(np.uint64)
        total += part << np.uint64(shift)
    return total.view(np.int64)


PACK_BITS = 53  # a float64 bincount sums integers exactly below 2**53
LANES, LANE_KEYS, LANE_ROWS = 8, 256, 4096  # `Packing.sums`: cells per key, for up to so many keys and from so many rows


def sum_width(values: np.ndarray | None, rows: int) -> int | None:
    """Bits that hold any per-key sum of `values` (None: ones, the row count): the bit length
    of their total when none is negative; None when they cannot be packed (`packed_sums`)."""
    if values is None:
        return rows.bit_length()
    if not len(values):
        return 0
    low, high = int(values.min()), int(values.max())
    if low < 0 or high * len(values) >= 1 << 62:  # the int64 total below cannot wrap
        return None
    return int(values.sum()).bit_length()


class Packing:
    """Several columns' sums per key by as few float64 bincounts as possible: non-negative
    integer columns (or None: count rows) are laid side by side in one float64 weight while
    their widths (`sum_width`) add up to at most 53 bits, so every per-key sum of the weight is
    an exact integer and each column's sum is a bit field of it. Others go by `int_sums`.
    Build once per batch (the weights), then `sums` for any keys of the batch."""

    def __init__(self, columns: Sequence[np.ndarray | None], rows: int) -> None:
        self.rows = rows
        self.packs: list[list[tuple[int, int, int]]] = []  # (column, shift, width) per weight
        self.alone: list[int] = []  # columns summed by int_sums
        used: list[int] = []
        for i, values in enumerate(columns):
            width = sum_width(values, rows)
            if width is None or width > PACK_BITS:
                self.alone.append(i)
                continue
            at = next((p for p, bits in enumerate(used) if bits + width <= PACK_BITS), len(used))
            if at == len(used):
                used.append(0)
                self.packs.append([])
            self.packs[at].append((i, used[at], width))
            used[at] += width
        self.columns = list(columns)
        self.lane: np.ndarray | None = None  # row number mod LANES (`sums`), made when first needed
        self.weights = [self._weight(pack) for pack in self.packs]
        self.exact = {i: exact_weights(columns[i]) for i in self.alone}  # type: ignore[arg-type]

    def _weight(self, pack: list[tuple[int, int, int]]) -> np.ndarray | None:
        if len(pack) == 1 and self.columns[pack[0][0]] is None:
            return None  # rows counted by a plain bincount
        packed = np.zeros(self.rows, np.int64)
        for i, shift, _ in pack:
            values = self.columns[i]
            packed += (1 << shift) if values is None else values << shift
        return packed.astype(np.float64)

    def sums(self, keys: np.ndarray | None, size: int) -> list[np.ndarray]:
        """The int64 sums per key number (0 … size - 1) of every column, in order (`keys` None:
        every row has key 0, size 1)."""
        out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(self.columns)
        lanes = None
        if keys is not None and size <= LANE_KEYS and self.rows >= LANE_ROWS and len(self.packs) > 1:
            # Few keys in runs (rows come in time order: a day, "direct", "desktop"): a bincount adding
            # into the same cell row after row waits on each add. Consecutive rows go to LANES cells
            # per key, summed after; the weights are exact integers, so any order gives the same sums.
            if self.lane is None:
                self.lane = np.arange(self.rows, dtype=np.int64) & (LANES - 1)
            lanes = (keys * LANES) | self.lane
        for pack, weights in zip(self.packs, self.weights, strict=True):
            if keys is None:  # one key: the totals (pairwise float sums of integers below 2**53: exact)
                total = np.array([self.rows if weights is None else weights.sum()])
            elif lanes is not None:
                total = np.bincount(lanes, weights=weights, minlength=size * LANES).reshape(size, LANES).sum(axis=1)
            else:
                total = np.bincount(keys, weights=weights, minlength=size)
            packed = total.astype(np.int64)
            for i, shift, width in pack:
                out[i] = (packed >> shift) & ((1 << width) - 1) if len(pack) > 1 else packed
        for i in self.alone:
            values = self.columns[i]
            assert values is not None
            out[i] = int_sums(np.zeros(self.rows, np.int64) if keys is None else keys, values, size, self.exact[i])
        return out


def whole_micros(values: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Floats that are whole µs (below 2**31 s): as int64 µs and their `exact_weights`; else None."""
    scaled = np.rint(values * MICRO)
    if not (np.all(np.abs(values) < 2**31) and np.array_equal(scaled / MICRO, values)):
        return None, None
    micros = scaled.astype(np.int64)
    return micros, exact_weights(micros)


def grow(array: np.ndarray, size: int, fill: int | float = 0) -> np.ndarray:
    """`array` extended to at least `size` items (capacity doubles), new items `fill`."""
    if len(array) >= size:
        return array
    out = np.full(max(size, 2 * len(array)), fill, array.dtype)
    out[:len(array)] = array
    return out


class IntBook:
    """Numbers for the distinct integer values of a column over a scan (dates, hours, statuses):
    a batch's distinct values are found by `compact`, only those are looked up (sorted search)."""

    def __init__(self, type_: pa.DataType) -> None:
        self.type = type_
        self.values = np.zeros(0, np.int64)  # by number
        self.sorted = np.zeros(0, np.int64)  # the values sorted …
        self.numbers = np.zeros(0, np.int64)  # … and their numbers

    def __len__(self) -> int:
        return len(self.values)

    def slots(self, values: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
        """The slot of every value (0 where not valid)."""
        picked = values if valid is None else values[valid]
        distinct, inverse = compact(picked)
        at = np.searchsorted(self.sorted, distinct)
        known = (at < len(self.sorted)) & (self.sorted[np.minimum(at, len(self.sorted) - 1)] == distinct) \
            if len(self.sorted) else np.zeros(len(distinct), bool)
        numbers = np.empty(len(distinct), np.int64)
        numbers[known] = self.numbers[at[known]]
        new = distinct[~known]
        if len(new):
            numbers[~known] = np.arange(len(self.values), len(self.values) + len(new))
            self.values = np.concatenate([self.values, new])
            order = np.argsort(self.values, kind="stable")
            self.sorted, self.numbers = self.values[order], order.astype(np.int64)
        picked_slots = numbers[inverse] + 1
        if valid is None:
            return picked_slots
        out = np.zeros(len(values), np.int64)
        out[valid] = picked_slots
        return out

    def decode(self, slots_: np.ndarray) -> pa.Array:
        """The values of `slots_` (null for 0), typed as the column."""
        valid = slots_ > 0
        return from_ints(self.values[np.maximum(slots_ - 1, 0)] if len(self.values) else np.zeros(len(slots_), np.int64),
                         valid, self.type)


class KeyBook:
    """Numbers for the distinct tuples of slots of several key columns over a scan (a campaign's
    source, medium and name). A batch's tuples are reduced to its distinct ones by integers;
    those are looked up in a dict (once per distinct tuple of a batch)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.known: dict[tuple[int, ...], int] = {}
        self.columns: list[list[int]] = [[] for _ in range(width)]  # each key's slots, by number

    def encode(self, columns: Sequence[np.ndarray]) -> np.ndarray:
        """The number of every row's tuple."""
        local = [compact(c) for c in columns]
        packed = np.zeros(len(columns[0]), np.int64)
        for distinct, inverse in local:
            packed = packed * len(distinct) + inverse
        tuples, inverse = compact(packed)
        numbers = np.empty(len(tuples), np.int64)
        rest = tuples
        parts = []
        for distinct, _ in reversed(local):
            parts.append(distinct[rest % len(distinct)])
            rest = rest // len(distinct)
        parts.reverse()
        for i, key in enumerate(zip(*(p.tolist() for p in parts), strict=True)):
            number = self.known.get(key)
            if number is None:
                number = self.known[key] = len(self.known)
                for column, slot in zip(self.columns, key, strict=True):
                    column.append(slot)
            numbers[i] = number
        return numbers[inverse]

    def slots(self, column: int) -> np.ndarray:
        """The slots of one key column, by tuple number."""
        return np.array(self.columns[column], np.int64)

    def __len__(self) -> int:
        return len(self.known)


class FloatSum:
    """Sums of float64 values per key, exact when the values are whole microseconds (durations):
    they are summed as integers, so the result does not depend on the order of the rows. Whole
    seconds give exactly the float64 sum in any order; other values are summed as floats."""

    def __init__(self) -> None:
        self.micros = np.zeros(0, np.int64)
        self.floats = np.zeros(0, np.float64)
        self.exact = True

    def add(self, keys: np.ndarray, values: np.ndarray, size: int,
            micros: tuple[np.ndarray | None, np.ndarray | None] | None = None) -> None:
        """Add `values` (nulls given as 0) to their keys (`micros`: `whole_micros(values)`)."""
        self.micros, self.floats = grow(self.micros, size), grow(self.floats, size)
        if self.exact:
            whole, weights = micros or whole_micros(values)
            if whole is not None:
                self.micros[:size] += int_sums(keys, whole, size, weights)
                return
            # Not whole µs: floats from now on, from the exact sums so far.
            self.floats = self.result(len(self.micros))
            self.exact = False
        self.floats[:size] += np.bincount(keys, weights=values, minlength=size)

    def add_micros(self, sums: np.ndarray, size: int) -> None:
        """Add sums per key of whole µs (`add` while `exact`, with the sums computed outside)."""
        self.micros = grow(self.micros, size)
        self.micros[:size] += sums

    def result(self, size: int) -> np.ndarray:
        """The sums of the first `size` keys."""
        micros, floats = grow(self.micros, size)[:size], grow(self.floats, size)[:size]
        if not self.exact:
            return floats
        # One rounding below 2**53 µs (whole seconds come out exact); beyond, seconds and their
        # fraction (same sign) rounded once each.
        magnitude = np.abs(micros)
        whole, fraction = np.divmod(magnitude, MICRO)
        large = np.sign(micros) * (whole.astype(np.float64) + fraction / MICRO)
        return np.where(magnitude < 2**53, micros / MICRO, large)


class Columns:
    """A batch's columns by name, with the numpy forms the groupings need computed once for every
    grouping the batch feeds. Values are Arrow arrays, or numpy ones put in directly (`put`)."""

    def __init__(self, arrays: Mapping[str, pa.Array] | None = None) -> None:
        self.arrays = dict(arrays or {})
        self.memo: dict[tuple[str, str], object] = {}
        self.rows = len(next(iter(self.arrays.values()))) if self.arrays else 0

    def put(self, kind: str, name: str, value: object, rows: int) -> None:
        """Give a column's numpy form (`slots`: a slot array; `ints`: (values, validity))."""
        self.memo[(kind, name)] = value
        self.rows = rows

    def get(self, kind: str, name: str) -> object:
        """A column's `slots`, `ints`, `floats`, `weights` (`exact_weights` of its ints) or
        `micros` (`whole_micros` of its floats), computed once."""
        key = (kind, name)
        if key not in self.memo:
            if kind == "weights":
                self.memo[key] = exact_weights(self.get("ints", name)[0])  # type: ignore[index]
            elif kind == "micros":
                self.memo[key] = whole_micros(self.get("floats", name)[0])  # type: ignore[index]
            else:
                array = self.arrays[name]
                self.memo[key] = slots(array) if kind == "slots" else ints(array) if kind == "ints" else floats(array)
        return self.memo[key]
