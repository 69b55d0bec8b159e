"""POST /agent-inventory/<token>: the OCS XML protocol for the FusionInventory and OCS agents;
POST /discovery/nmap: an ``nmap -oX`` scan."""

from __future__ import annotations

from flask import Response, g, request
from flask.views import MethodView
from flask_smorest import abort

from cairn.api import Blueprint
from cairn.audit.context import Actor, acting_as
from cairn.auth.guard import path_token, requires
from cairn.auth.roles import CMDB_WRITERS
from cairn.http import accepts
from integrations.agents import nmap, protocol, services
from integrations.sync.schemas import SyncJobSchema

blp = Blueprint("agents", __name__, description="Inventory agents (OCS protocol) and nmap scans")

AGENT_TYPES = (
    "application/x-compress",
    "application/x-compress-zlib",
    "application/x-compress-gzip",
    "application/xml",
    "text/xml",
    "application/octet-stream",
    "",
)


@blp.route("/agent-inventory/<string:token>")
class AgentInventory(MethodView):
    @path_token(lambda token: services.authenticate(token))
    @accepts(*AGENT_TYPES)
    @blp.doc(
        summary="An inventory agent's PROLOG or INVENTORY (zlib-compressed OCS XML); the site token is the path",
        requestBody={"content": {"application/x-compress": {"schema": {"type": "string", "format": "binary"}}}},
        responses={"200": {"description": "The zlib-compressed <REPLY>", "content": {"application/x-compress": {}}}},
    )
    def post(self, token):
        """An inventory agent's PROLOG or INVENTORY request, answered with the OCS <REPLY>."""
        site_token = g.path_token  # checked by the guard (cairn/auth/guard.py path_token): 401 otherwise
        try:
            body = request.get_data(cache=False)
            with acting_as(Actor(f"agents:{site_token.site}")):
                answer = services.receive(site_token, body, agent=request.headers.get("User-Agent", ""))
        except protocol.ProtocolError as exc:
            # problem+json like every error answer (the agents log the status line and give up)
            abort(exc.status, message=exc.message)
        return Response(answer, status=200, mimetype="application/x-compress")


@blp.route("/discovery/nmap")
class NmapScans(MethodView):
    @requires(*CMDB_WRITERS)
    @accepts("application/xml", "text/xml")
    @blp.doc(requestBody={"content": {"application/xml": {"schema": {"type": "string", "format": "binary"}}}})
    @blp.response(201, SyncJobSchema)
    def post(self):
        """Import an ``nmap -oX`` scan: hosts matched to CIs (seen), the others listed as unmanaged."""
        return nmap.import_scan(request.get_data(cache=False))
