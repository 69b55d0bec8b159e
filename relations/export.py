"""A CI's neighbourhood in the formats visualisers read: Cytoscape.js elements, GraphML, DOT."""

from __future__ import annotations

from cairn.safe_output import dot_string, xml_attr, xml_text


def cytoscape(hood: dict) -> dict:
    """Cytoscape.js ``elements`` JSON (nodes and edges with their data)."""
    nodes = [
        {
            "data": {
                "id": str(n["id"]),
                "label": n["name"],
                "ci_class": n["ci_class"],
                "criticality": n["criticality"],
                "depth": n["depth"],
            }
        }
        for n in hood["nodes"]
    ]
    edges = [
        {
            "data": {
                "id": f"r{e['id']}",
                "source": str(e["source"]),
                "target": str(e["target"]),
                "type": e["type"],
                "label": e["label"],
            }
        }
        for e in hood["edges"]
    ]
    return {
        "root": hood["root"],
        "depth": hood["depth"],
        "truncated": hood["truncated"],
        "hidden_nodes": hood.get("hidden_nodes", 0),
        "graph_version": hood["graph_version"],
        "elements": {"nodes": nodes, "edges": edges},
    }


def graphml(hood: dict) -> str:
    """GraphML for yEd and Gephi; node and edge attributes declared as keys. Every value is written
    through the kernel's XML escaping, so a name holding control characters still gives a
    well-formed document."""
    root = xml_attr(f"ci-{hood['root']}")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
        '  <key id="label" for="node" attr.name="label" attr.type="string"/>',
        '  <key id="ci_class" for="node" attr.name="ci_class" attr.type="string"/>',
        '  <key id="criticality" for="node" attr.name="criticality" attr.type="string"/>',
        '  <key id="depth" for="node" attr.name="depth" attr.type="int"/>',
        '  <key id="type" for="edge" attr.name="type" attr.type="string"/>',
        '  <key id="elabel" for="edge" attr.name="label" attr.type="string"/>',
        f'  <graph id="{root}" edgedefault="directed">',
    ]
    if hood.get("hidden_nodes"):
        lines.append(f"    <!-- {int(hood['hidden_nodes'])} CIs you may not see are left out -->")
    for n in hood["nodes"]:
        lines.append(f'    <node id="n{xml_attr(n["id"])}">')
        lines.append(f'      <data key="label">{xml_text(n["name"])}</data>')
        lines.append(f'      <data key="ci_class">{xml_text(n["ci_class"])}</data>')
        lines.append(f'      <data key="criticality">{xml_text(n["criticality"])}</data>')
        lines.append(f'      <data key="depth">{xml_text(n["depth"])}</data>')
        lines.append("    </node>")
    for e in hood["edges"]:
        edge_id, source, target = xml_attr(e["id"]), xml_attr(e["source"]), xml_attr(e["target"])
        lines.append(f'    <edge id="r{edge_id}" source="n{source}" target="n{target}">')
        lines.append(f'      <data key="type">{xml_text(e["type"])}</data>')
        lines.append(f'      <data key="elabel">{xml_text(e["label"])}</data>')
        lines.append("    </edge>")
    lines += ["  </graph>", "</graphml>", ""]
    return "\n".join(lines)


def dot(hood: dict) -> str:
    """Graphviz DOT: one node per CI (the root bold), one labelled edge per relationship. Node ids
    are ``n<id>`` (ids are integers); every string is quoted by the kernel's ``dot_string``."""
    lines = [f"digraph {dot_string('ci-' + str(hood['root']))} {{", "  rankdir=LR;", "  node [shape=box];"]
    if hood.get("hidden_nodes"):
        lines.append(f"  // {int(hood['hidden_nodes'])} CIs you may not see are left out")
    for n in hood["nodes"]:
        style = ", style=bold" if n["id"] == hood["root"] else ""
        label = f"{n['name']}\n{n['ci_class']}"
        lines.append(f"  n{int(n['id'])} [label={dot_string(label)}{style}];")
    for e in hood["edges"]:
        label, edge_id = dot_string(e["label"]), dot_string(f"r{e['id']}")
        lines.append(f"  n{int(e['source'])} -> n{int(e['target'])} [label={label}, id={edge_id}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


__all__ = ["cytoscape", "dot", "graphml"]
