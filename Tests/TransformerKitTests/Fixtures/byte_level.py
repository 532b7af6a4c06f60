"""GPT-2's byte ↔ printable-character table, shared by the BPE fixture generators."""


def bytes_to_unicode():
    """Each of the 256 bytes as the printable character byte-level BPE writes it (GPT-2's table)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}
