#!/usr/bin/env python3
"""Derives the request content models the SOAP layer checks from the published XSDs.

For every request element (`Richiesta*`) of every published WSDL (the family is the
service name without `AnprService`, the XSD the one the WSDL imports), writes the
complex types reachable from it as their content model (sequences and choices with
their cardinality, element particles in schema order) and the simple types as their
primitive base, whitespace rule and facets (length bounds, patterns by derivation
level, enumerations, numeric bounds). The Rust side (`anpr_soap::schema`) validates a
request against this table — unknown, missing, repeated and misplaced elements, text
lengths, patterns, enumerations, dates, numbers — naming the element path of each
finding, before the request is mapped to the service layer.

Table format (one record per line, fields separated by one space; the last field of a
line may contain spaces):
  E family element type        request element -> its type key
  T key                        complex type; its model follows until the next T/S:
    G kind min max             group start (kind: s sequence, c choice; max n = unbounded)
    C name typekey min max     element particle
    /                          group end
  S key base ws min max        simple type: primitive base, whitespace (p, r, c), length
                               bounds ('-' = none)
    P level regex              pattern (alternatives at one level are ORed, levels ANDed)
    V value                    enumeration value
    N lo hi                    numeric bounds (minInclusive / maxInclusive, '-' = none)

Usage: python3 tools/derive_schema.py > data/schema.txt   (from crates/anpr-soap)
Needs: pip install xmlschema
"""
import os
import sys
import xml.etree.ElementTree as ET

import xmlschema
from xmlschema.validators import XsdGroup, XsdElement

HERE = os.path.dirname(os.path.abspath(__file__))
WSDL = os.path.join(HERE, "..", "wsdl")
NS_WSDL = "{http://schemas.xmlsoap.org/wsdl/}"
NS_XSD = "{http://www.w3.org/2001/XMLSchema}"

complessi = {}  # key -> list of model lines
semplici = {}  # key -> list of lines
ordine = []


def local(qname):
    return qname.split("}")[-1] if qname else qname


def famiglie():
    """(family, xsd file) of every published WSDL."""
    out = []
    for f in sorted(os.listdir(WSDL)):
        if not f.endswith(".wsdl"):
            continue
        root = ET.parse(os.path.join(WSDL, f)).getroot()
        nome = root.find(NS_WSDL + "service").get("name")
        imp = root.find(NS_WSDL + "types").find(NS_XSD + "schema").find(NS_XSD + "import")
        out.append((nome.replace("AnprService", ""), os.path.basename(imp.get("schemaLocation"))))
    return out


def escape_regex(r):
    """A pattern on one printable line: control characters (the XSDs hold C1 ones
    and a newline) as `\\x{..}` escapes, which mean the same character in the Rust
    regex syntax, inside or outside a class."""
    return "".join(
        "\\x{%X}" % ord(c) if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F else c for c in r
    )


def ns_key(qname):
    ns = qname[1:].split("}")[0].rstrip("/").split("/")[-1]
    return "%s:%s" % (ns, local(qname))


def simple_key(st, hint):
    if st.name:
        return "s:" + ns_key(st.name)
    return "s@" + hint


def whitespace(st):
    t = st
    while t is not None:
        f = (getattr(t, "facets", None) or {}).get(NS_XSD + "whiteSpace")
        if f is not None:
            return {"preserve": "p", "replace": "r", "collapse": "c"}[f.value]
        t = getattr(t, "base_type", None)
    return "p"


def simple(st, hint):
    key = simple_key(st, hint)
    if key in semplici:
        return key
    prim = local(st.primitive_type.name) if getattr(st, "primitive_type", None) is not None else "string"
    lo = hi = None
    nlo = nhi = None
    patterns = []
    enum = None
    t = st
    level = 0
    while t is not None:
        facets = getattr(t, "facets", None) or {}
        for name, f in facets.items():
            kind = local(name) if name else ""
            if kind == "length":
                lo = f.value if lo is None else lo
                hi = f.value if hi is None else hi
            elif kind == "minLength" and lo is None:
                lo = f.value
            elif kind == "maxLength" and hi is None:
                hi = f.value
            elif kind == "pattern":
                for r in f.regexps:
                    patterns.append((level, r))
            elif kind == "enumeration" and enum is None:
                enum = list(f.enumeration)
            elif kind == "minInclusive" and nlo is None:
                nlo = f.value
            elif kind == "maxInclusive" and nhi is None:
                nhi = f.value
        level += 1
        t = getattr(t, "base_type", None)
    lines = ["S %s %s %s %s %s" % (key, prim, whitespace(st), "-" if lo is None else lo, "-" if hi is None else hi)]
    for lv, r in patterns:
        lines.append("P %d %s" % (lv, escape_regex(r)))
    for v in enum or []:
        lines.append("V %s" % v)
    if nlo is not None or nhi is not None:
        lines.append("N %s %s" % ("-" if nlo is None else nlo, "-" if nhi is None else nhi))
    semplici[key] = lines
    ordine.append(("S", key))
    return key


def type_key(family, el, parent_key):
    t = el.type
    if t.is_simple() or t.has_simple_content():
        st = t if t.is_simple() else t.content
        return simple(st, "%s/%s" % (parent_key, el.local_name))
    if t.name:
        # Same local names live in several vocabularies with different content.
        return ns_key(t.name)
    return "%s@%s/%s" % (family, parent_key, el.local_name)


def mx(v):
    return "n" if v is None else str(v)


def model(family, group, key, lines, todo):
    lines.append("G %s %d %s" % ("c" if group.model == "choice" else "s", group.min_occurs, mx(group.max_occurs)))
    for p in group:
        if isinstance(p, XsdGroup):
            model(family, p, key, lines, todo)
        elif isinstance(p, XsdElement):
            ck = type_key(family, p, key)
            lines.append("C %s %s %d %s" % (p.local_name, ck, p.min_occurs, mx(p.max_occurs)))
            if not ck.startswith("s"):
                todo.append((p, ck))
    lines.append("/")


def visit(family, el, key):
    if key in complessi:
        return
    lines = []
    complessi[key] = lines
    ordine.append(("T", key))
    todo = []
    content = el.type.content
    if isinstance(content, XsdGroup):
        model(family, content, key, lines, todo)
    for child, ck in todo:
        visit(family, child, ck)


def main():
    out = sys.stdout
    out.write("# Generated by tools/derive_schema.py from the published XSDs: do not edit.\n")
    out.write("# E family element type | T complex type, G/C// model | S simple type, P V N facets\n")
    roots = []
    schemi = {}
    for family, xsd in famiglie():
        schema = schemi.get(xsd) or xmlschema.XMLSchema(os.path.join(WSDL, xsd))
        schemi[xsd] = schema
        for name, el in sorted(schema.elements.items()):
            if not name.startswith("Richiesta"):
                continue
            key = type_key(family, el, family)
            roots.append((family, name, key))
            visit(family, el, key)
    for family, name, key in roots:
        out.write("E %s %s %s\n" % (family, name, key))
    for kind, key in ordine:
        if kind == "T":
            out.write("T %s\n" % key)
            for line in complessi[key]:
                out.write(line + "\n")
        else:
            for line in semplici[key]:
                out.write(line + "\n")


if __name__ == "__main__":
    main()
