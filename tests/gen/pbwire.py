"""Raw protobuf wire data, for models no protobuf library would build
(nesting past any sane depth): used by make_bad_models.py and
make_fuzz_seeds.py."""


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def ld(field, payload):
    """A length-delimited field."""
    return varint(field << 3 | 2) + varint(len(payload)) + payload
