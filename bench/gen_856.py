"""Generate a synthetic 004010 856 interchange for benchmarks.

``python bench/gen_856.py OUT --segments 200000`` writes one interchange of
ship notices (S > O > P > I hierarchy, lots and expiry dates on items) with
about that many segments; ``--bytes 1G`` sizes it by bytes instead. The
output is written as it is generated, so a 1 GB file needs no memory.
"""

from __future__ import annotations

import argparse
import sys

ITEMS_PER_SET = 200
TERM = "~\n"


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1:].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


def ship_notice(n: int, items: int = ITEMS_PER_SET) -> list[str]:
    """One 856 transaction set (without envelope) as segment strings."""
    control = f"{n:04d}"
    segs = [
        f"ST*856*{control}",
        f"BSN*00*SHP{n:08d}*20261123*1200*0001",
        "HL*1**S",
        "TD1*CTN25*12****G*41.5*LB",
        "TD5**2*FDEG*M*FEDEX GROUND",
        f"REF*BM*BOL{n:010d}",
        "DTM*011*20261123",
        "N1*ST*MERCY GENERAL HOSPITAL*92*MGH01",
        "N3*100 HOSPITAL WAY",
        "N4*SPRINGFIELD*IL*62701*US",
        "HL*2*1*O",
        f"PRF*PO{n:08d}***20261120",
        "HL*3*2*P",
        f"MAN*GM*00012345678{n:07d}",
    ]
    hl = 3
    for i in range(1, items + 1):
        hl += 1
        segs += [
            f"HL*{hl}*3*I",
            f"LIN*{i}*VN*MS{i:06d}*UP*0{i:011d}*LT*L{n:05d}{i:03d}",
            f"SN1**{i % 40 + 1}*EA",
            "PID*F****STERILE SURGICAL GLOVES SIZE 7",
            "DTM*036*20281231",
        ]
    segs.append(f"CTT*{items}")
    segs.append(f"SE*{len(segs) + 1}*{control}")
    return segs


def generate(
    out: str,
    *,
    segments: int | None = None,
    size: int | None = None,
    sender: str = "MEDSUPPLYDIST",
    receiver: str = "MERCYHOSPITAL",
    items: int = ITEMS_PER_SET,
) -> int:
    """Write the file; returns the number of segments written."""
    written = 0
    nbytes = 0
    sets = 0
    with open(out, "w", encoding="ascii", newline="") as fh:
        head = [
            f"ISA*00*          *00*          *ZZ*{sender:<15}*ZZ*{receiver:<15}*261123*1200*U*00401*000000001*0*P*>",
            f"GS*SH*{sender}*{receiver}*20261123*1200*1*X*004010",
        ]
        fh.write(TERM.join(head) + TERM)
        written += 2
        while True:
            sets += 1
            body = ship_notice(sets, items)
            text = TERM.join(body) + TERM
            fh.write(text)
            written += len(body)
            nbytes += len(text)
            if segments is not None and written >= segments:
                break
            if size is not None and nbytes >= size:
                break
        fh.write(f"GE*{sets}*1{TERM}IEA*1*000000001{TERM}")
        written += 2
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--segments", type=int, default=None)
    group.add_argument("--bytes", dest="size", type=_size, default=None)
    parser.add_argument("--sender", default="MEDSUPPLYDIST", help="ISA06/GS02 (a partner's id, for `gateway run`)")
    parser.add_argument("--receiver", default="MERCYHOSPITAL", help="ISA08/GS03")
    parser.add_argument("--items", type=int, default=ITEMS_PER_SET, help="items per ship notice (set size)")
    args = parser.parse_args(argv)
    if args.segments is None and args.size is None:
        args.segments = 200_000
    count = generate(
        args.out, segments=args.segments, size=args.size, sender=args.sender, receiver=args.receiver, items=args.items
    )
    print(f"wrote {count} segments to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
