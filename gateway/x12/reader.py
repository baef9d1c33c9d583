"""The streaming X12 reader: bytes in, envelope events and segments out.

:func:`read_events` never holds more than about two chunks of the input, so
memory stays flat however large the file. It tolerates what files in the
wild do (CR/LF after terminators, newline terminators, fixed-width wrapped
lines, a UTF-8 BOM, blank lines, trailing Ctrl-Z, EBCDIC, several
interchanges with their own delimiters) and reports every deviation as a
located :class:`~gateway.x12.findings.Finding` instead of raising.

The input is decoded as latin-1 (or cp037 for EBCDIC), one character per
byte, so character positions are byte offsets; elements of non-ASCII
segments are then re-decoded with ``encoding`` (UTF-8 by default).
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Iterator
from functools import lru_cache
from typing import Protocol

from gateway.errors import Location
from gateway.x12.envelope import SERVICE_SEGMENTS, Envelope
from gateway.x12.findings import Finding
from gateway.x12.isa import IsaScan, NotIsa, scan_isa
from gateway.x12.model import Event, Problem, SetStart
from gateway.x12.segment import Segment

CHUNK_SIZE = 1 << 20
#: Characters that are never data at the start of a segment (NEL is EBCDIC's newline).
JUNK = " \t\r\n\x00\x0b\x0c\x1a\x85"
CONTROL = frozenset({"ISA", "IEA", "GS", "GE", "ST", "SE"}) | SERVICE_SEGMENTS
BOM = b"\xef\xbb\xbf"
EBCDIC_ISA = b"\xc9\xe2\xc1"


class _Everything:
    """A container holding every segment id: outside a set, every segment needs attention."""

    def __contains__(self, item: object) -> bool:
        return True


_EVERYTHING = _Everything()


class Readable(Protocol):
    """Anything with a binary ``read(size)``, such as an open file."""

    def read(self, size: int = -1, /) -> bytes: ...


Source = bytes | bytearray | memoryview | Readable | Iterable[bytes]


def _chunks(source: Source, size: int) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        for i in range(0, len(data), size):
            yield data[i : i + size]
        return
    read = getattr(source, "read", None)
    if read is not None:
        while chunk := read(size):
            yield chunk
        return
    for chunk in source:  # type: ignore[union-attr]
        if chunk:
            yield bytes(chunk)


class _Buffer:
    """Decoded text not yet consumed; ``base`` is the file offset of ``text[0]``."""

    def __init__(self, source: Source, chunk_size: int) -> None:
        self.chunks = _chunks(source, chunk_size)
        self.text = ""
        self.base = 0
        self.eof = False
        self.codec = "latin-1"
        self.started = False

    def fill(self) -> bool:
        """Append the next chunk; False at end of input."""
        if self.eof:
            return False
        chunk = next(self.chunks, None)
        if chunk is None:
            self.eof = True
            return False
        if not self.started:
            # the BOM and EBCDIC checks need the first 4 bytes, however small the chunks
            while len(chunk) < 4 and (more := next(self.chunks, None)) is not None:
                chunk += more
            self.started = True
            if chunk.startswith(BOM):
                chunk = chunk[len(BOM) :]
                self.base = len(BOM)
            if chunk.lstrip(b"\x40\x25\x15\x0d").startswith(EBCDIC_ISA):
                self.codec = "cp037"
        self.text += chunk.decode(self.codec)
        return True

    def consume(self, n: int) -> None:
        """Drop the first ``n`` characters."""
        self.text = self.text[n:]
        self.base += n

    def skip_junk(self) -> None:
        """Drop whitespace, NULs and Ctrl-Z between interchanges."""
        while True:
            stripped = self.text.lstrip(JUNK)
            self.consume(len(self.text) - len(stripped))
            if self.text or not self.fill():
                return


def _plan(text: str, term: str, suffix: str, wrapped: bool, eof: bool) -> tuple[str, bool]:
    """Choose what to split on and whether parts need cleaning: ``(token, clean)``.

    When every terminator is followed by the same suffix (``~\r\n``),
    splitting on terminator+suffix removes the line breaks for free; when no
    other line breaks, indentation or blank lines occur, the parts need no
    per-segment stripping at all: the common case, and the fast one. Counts
    stop at the last full token (the tail is carried into the next buffer);
    each is one C-level pass over the buffer.
    """
    if wrapped:
        return term, True
    joined = term + suffix
    cut = text.rfind(joined) + len(joined) if suffix else text.rfind(term) + len(term)
    if cut < len(joined):
        cut = 0
    n_joined = text.count(joined, 0, cut) if suffix else 0
    # (a character absent is found absent by one memchr, ~50 times quicker than counting it: most
    # files have no carriage returns, and almost none a tab)
    n_cr = text.count("\r", 0, cut) if text.find("\r", 0, cut) >= 0 else 0
    n_lf = text.count("\n", 0, cut) if text.find("\n", 0, cut) >= 0 else 0  # (a one-line file has none)
    token = term
    if suffix:
        if term == " ":
            # A space terminator is only a terminator where a line break follows it.
            consistent = n_cr == n_joined * joined.count("\r") and n_lf == n_joined * joined.count("\n")
        else:
            consistent = text.count(term, 0, cut) == n_joined
        if consistent:
            token = joined
    if eof and token is joined and term in text[cut:]:
        # The file's last segments end with a bare terminator: split on it and clean.
        return term, True
    n = n_joined if token is joined else text.count(term, 0, cut)
    clean = (
        text[:1] in JUNK
        or n_cr != n * token.count("\r")
        or n_lf != n * token.count("\n")
        or (token + " ") in text
        or ("\t" in text and (token + "\t") in text)
        or (token + token) in text
        or (eof and any(ch in JUNK for ch in text[cut:]))
    )
    return token, clean


class X12Reader:
    """The fast streaming reader: envelope events, and each in-set segment as its element list.

    Iterating yields :data:`~gateway.x12.model.Event` values and, for every
    segment inside a transaction set, the plain ``list[str]`` of its
    elements (``[0]`` is the id): no per-segment object is made, which is
    what keeps reading within half the speed of a bare ``str.split``.
    While iterating, :attr:`offset` is the byte offset of the segment last
    yielded, the way a SAX locator works; its index is the ST's index
    (``SetStart.header.segment.index``) plus the segments since, which
    consumers count. :func:`read_events` wraps all this into
    :class:`Segment` values for code that wants objects.
    """

    __slots__ = ("body", "chunk_size", "collect", "encoding", "max_collect", "offset", "overflowed", "source")

    def __init__(
        self,
        source: Source,
        *,
        chunk_size: int = CHUNK_SIZE,
        encoding: str = "utf-8",
        collect: list[Segment] | None = None,
        max_collect: int | None = None,
        body: bool = True,
    ) -> None:
        self.source = source
        self.chunk_size = chunk_size
        self.encoding = encoding
        self.offset = 0
        #: when given, the open set's segments (after ST, before SE) are kept here as Segment
        #: values, emptied at each ST: how translation gets a set without a second pass
        self.collect = collect
        #: a set bigger than this many segments is not kept whole (checked once per buffer, so memory
        #: stays bounded on a hostile set of millions); ``overflowed`` then says so until the next ST
        self.max_collect = max_collect
        self.overflowed = False
        #: False: the segments inside a set are counted, not split nor yielded (nor collected): the
        #: envelope events are the same, for a pass that needs only them (about twice as fast)
        self.body = body

    def __iter__(self) -> Iterator[Event | list[str]]:
        return self._events()

    def _events(self) -> Iterator[Event | list[str]]:  # noqa: C901 - the hot loop stays in one frame on purpose
        encoding = self.encoding
        chunk_size = self.chunk_size
        buf = _Buffer(self.source, chunk_size)
        buf.fill()
        if not buf.text.strip(JUNK) and buf.eof:
            yield Problem(Finding("X12-R009", "the input is empty", Location(byte_offset=0)))
            return
        seen_isa = False
        recode = encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591")
        new = tuple.__new__
        collect = self.collect
        body = self.body
        while True:
            buf.skip_junk()
            while len(buf.text) < 512 and buf.fill():
                pass
            if not buf.text:
                return
            if not buf.text.startswith("ISA"):
                yield _skip_garbage(buf, seen_isa)
                continue
            try:
                scan = _scan(buf)
            except NotIsa as exc:
                yield Problem(Finding("X12-R001", f"not a readable ISA: {exc.reason}", Location(byte_offset=buf.base)))
                buf.consume(3)
                continue
            seen_isa = True
            if not "".join(scan.elements).isascii():
                scan.elements = [_recode(v, encoding) for v in scan.elements]
            env = Envelope(scan, Segment(scan.elements, buf.base, 1))
            yield env.start()
            buf.consume(scan.length)
            d = scan.delimiters
            term, suffix, es, wrapped = d.segment, d.suffix, d.element, scan.wrapped
            index = 1
            in_set = False
            special: frozenset[str] | _Everything = _EVERYTHING
            while True:  # the interchange's body, one buffer of text at a time
                if collect is not None and self.max_collect is not None and len(collect) > self.max_collect:
                    collect.clear()
                    self.overflowed = True
                while len(buf.text) < chunk_size and buf.fill():
                    pass
                text = buf.text
                eof = buf.eof
                token, clean = _plan(text, term, suffix, wrapped, eof)
                fix = recode and buf.codec == "latin-1" and not text.isascii()
                tl = len(token)
                end: int | None = None  # set when the interchange ends inside this buffer
                parts: list[str] = []
                if not body and not clean and not fix:
                    # Envelopes only, clean text: set bodies are counted, not split (see _skim).
                    last = text.rfind(token)
                    if last < 0 and not eof:
                        buf.fill()  # not one whole segment yet: read on
                        continue
                    carry = "" if eof else text[last + tl :]
                    skimmed = yield from self._skim(env, buf.base, text, (token, es), last, eof, special, index)
                    special, index, off, end, e = skimmed
                    in_set = env.set is not None
                else:
                    parts = text.split(token)
                    carry = "" if eof else parts.pop()
                    if not parts and not eof:
                        buf.fill()  # not one whole segment yet: read on
                        continue
                    off = buf.base
                if not clean and not fix:
                    # Fast path: clean parts, no per-part stripping or re-decoding.
                    for p in parts:
                        e = p.split(es)
                        e0 = e[0]
                        if e0 < "0":
                            # empty, or starts with whitespace/NUL/Ctrl-Z: one compare catches all
                            q = p.lstrip(JUNK)
                            if not q:
                                off += len(p) + tl
                                continue
                            e = q.split(es)
                            e0 = e[0]
                            off += len(p) - len(q)
                            p = q
                        index += 1
                        if e0 in special:  # control segments; outside a set, everything
                            seg = new(Segment, (e, off, index))
                            if e0 not in CONTROL:
                                yield env.stray(seg)
                            elif e0 == "ISA":
                                end = off
                                break
                            else:
                                if e0 == "ST" and collect is not None:
                                    collect.clear()
                                    self.overflowed = False
                                events = _control(env, seg, e0)
                                in_set = env.set is not None
                                special = CONTROL if in_set else _EVERYTHING
                                yield from events
                                if e0 == "IEA":
                                    end = off + len(p) + tl
                                    break
                        else:
                            self.offset = off
                            if collect is not None:
                                collect.append(new(Segment, (e, off, index)))
                            yield e
                        off += len(p) + tl
                else:
                    for p in parts:
                        ln = len(p)
                        q = p.lstrip(JUNK) if clean else p
                        start = off + ln - len(q)
                        if "\n" in q or "\r" in q:
                            q = q.replace("\r", "").replace("\n", "") if term not in "\r\n" else q.strip("\r\n")
                        if not q:
                            off += ln + tl
                            continue
                        if fix and not q.isascii():
                            q = q.encode("latin-1").decode(encoding, "replace")
                        e = q.split(es)
                        index += 1
                        seg = new(Segment, (e, start, index))
                        if e[0] in CONTROL:
                            if e[0] == "ISA":
                                end = start
                                break
                            if e[0] == "ST" and collect is not None:
                                collect.clear()
                                self.overflowed = False
                            events = _control(env, seg, e[0])
                            in_set = env.set is not None
                            special = CONTROL if in_set else _EVERYTHING
                            yield from events
                            if e[0] == "IEA":
                                end = off + ln + tl
                                break
                        elif in_set:
                            if not body:
                                off += ln + tl
                                continue
                            self.offset = start
                            if collect is not None:
                                collect.append(seg)
                            yield e
                        else:
                            yield env.stray(seg)
                        off += ln + tl
                if end is not None:
                    if e[0] == "ISA":  # a new interchange began before this one's IEA
                        yield from env.iea(
                            None,
                            f"interchange {env.interchange.control_number} ends without IEA before the next ISA",
                        )
                    buf.consume(min(end - buf.base, len(buf.text)))
                    break
                if eof:
                    buf.consume(len(buf.text))
                    yield from env.iea(None)
                    break
                buf.text = carry
                buf.base = off

    def _skim(
        self,
        env: Envelope,
        base: int,
        text: str,
        delimiters: tuple[str, str],
        last: int,
        eof: bool,
        special: frozenset[str] | _Everything,
        index: int,
    ) -> Generator[Event | list[str], None, tuple[frozenset[str] | _Everything, int, int, int | None, list[str]]]:
        """The envelope-only pass over one clean buffer (``body`` False, the fast path's layout): the
        same events as splitting it would give, but inside a set the next part that may matter (a
        control segment, or one starting oddly) is found by one regular-expression search and the
        parts before it are counted (``str.count``), never split. Parts are the text between the
        tokens up to ``last`` (the last token; after it the carry), and after it too at ``eof``.
        Returns ``(special, index, offset, end, elements)``: the state the reader goes on with."""
        token, es = delimiters
        tl = len(token)
        candidates = _candidates(token, es)
        limit = len(text) + 1 if eof else last + tl  # a part starting before this is in the buffer
        bound = len(text) + 1 if eof else last  # a token at or past this begins no part in the buffer
        collect = self.collect
        new = tuple.__new__
        e: list[str] = []
        pos = 0
        while pos < limit:
            stop = text.find(token, pos)
            if stop < 0:
                stop = len(text)  # at eof: the last part
            p = text[pos:stop]
            if special is CONTROL:
                e0 = p.partition(es)[0]
                if e0 >= "0" and e0 not in CONTROL:  # a body segment: skip to the next candidate
                    found = candidates.search(text, stop)
                    nxt = found.start() if found is not None and found.start() < bound else -1
                    if nxt < 0:  # every part left in the buffer is a body segment
                        nxt = len(text) if eof else last
                    index += 1 + text.count(token, stop, nxt)
                    pos = nxt + tl
                    continue
            off = base + pos
            e = p.split(es)
            e0 = e[0]
            if e0 < "0":  # empty, or starts with whitespace/NUL/Ctrl-Z (as in the reader's fast path)
                q = p.lstrip(JUNK)
                if not q:
                    pos = stop + tl
                    continue
                e = q.split(es)
                e0 = e[0]
                off += len(p) - len(q)
                p = q
            index += 1
            if e0 in special:
                seg = new(Segment, (e, off, index))
                if e0 not in CONTROL:
                    yield env.stray(seg)
                elif e0 == "ISA":
                    return special, index, off, off, e
                else:
                    if e0 == "ST" and collect is not None:
                        collect.clear()
                        self.overflowed = False
                    events = _control(env, seg, e0)
                    special = CONTROL if env.set is not None else _EVERYTHING
                    yield from events
                    if e0 == "IEA":
                        return special, index, off, off + len(p) + tl, e
            else:
                self.offset = off
                yield e
            pos = stop + tl
        return special, index, base + min(pos, limit), None, e


def read_events(source: Source, *, chunk_size: int = CHUNK_SIZE, encoding: str = "utf-8") -> Iterator[Event | Segment]:
    """Stream ``source`` as envelope events, with each in-set segment as a :class:`Segment`.

    ``source`` is bytes, a binary stream or an iterable of byte chunks.
    """
    reader = X12Reader(source, chunk_size=chunk_size, encoding=encoding)
    new = tuple.__new__
    index = 0
    for item in reader:
        if type(item) is list:
            index += 1
            yield new(Segment, (item, reader.offset, index))
        else:
            if isinstance(item, SetStart):
                index = item.header.segment.index
            yield item  # type: ignore[misc]


@lru_cache(maxsize=16)
def _candidates(token: str, es: str) -> re.Pattern[str]:
    """A segment terminator followed by a part that may not be a body segment: a control segment's
    id, an odd first character (below ``0``), an element separator, another terminator or the end.
    A superset (``STC`` is found too): the reader looks at each part found."""
    ids = "|".join(sorted(CONTROL, key=len, reverse=True))
    return re.compile(f"{re.escape(token)}(?={ids}|[\\x00-/]|{re.escape(es)}|{re.escape(token)}|\\Z)")


def _recode(value: str, encoding: str) -> str:
    """Re-read latin-1 decoded text in the file's real encoding."""
    try:
        return value.encode("latin-1").decode(encoding, "replace")
    except UnicodeEncodeError:  # already decoded by another codec (EBCDIC)
        return value


def _scan(buf: _Buffer) -> IsaScan:
    """The ISA at the buffer's start, reading on while the scanner needs more input."""
    while True:
        try:
            return scan_isa(buf.text, buf.base)
        except NotIsa as exc:
            if exc.need_more and buf.fill():
                continue
            if len(buf.text) < 512 and buf.fill():
                continue
            raise


def _skip_garbage(buf: _Buffer, seen_isa: bool) -> Problem:
    """Drop data up to the next ISA and report it; memory stays bounded however long the junk."""
    start = buf.base
    sample = buf.text[:40].encode("latin-1", "replace").decode("utf-8", "replace")
    search_from = 1  # the text may start with an "ISA" that failed to scan
    while (at := buf.text.find("ISA", search_from)) < 0:
        cut = max(len(buf.text) - 2, search_from)  # keep 2 chars: an "ISA" may straddle chunks
        buf.consume(cut)
        search_from = 0
        if not buf.fill():
            at = len(buf.text)
            break
    buf.consume(at)
    dropped = buf.base - start
    if seen_isa:
        message = f"{dropped} bytes after an interchange are not an ISA"
        return Problem(Finding("X12-R006", message, Location(byte_offset=start), value=sample))
    message = "not X12: the file does not start with an ISA segment"
    return Problem(Finding("X12-R001", message, Location(byte_offset=start), value=sample))


def _control(env: Envelope, seg: Segment, sid: str) -> list[Event]:
    if sid == "ST":
        return env.st(seg)
    if sid == "SE":
        return env.se(seg)
    if sid == "GS":
        return env.gs(seg)
    if sid == "GE":
        return env.ge(seg)
    if sid == "IEA":
        return env.iea(seg)
    return env.service(seg)
