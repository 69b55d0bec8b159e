"""The service catalogue: items people order (a laptop, VPN access), the approval chain an order
goes through and the fulfilment tasks teams work until the request is done.

An order is a ``request`` ticket (tickets.models.Ticket) with one request item per catalogue item
ordered. Each item first runs its approval chain: the steps (the requester's manager, a team, a
fixed user) are resolved to people when the order is placed and recorded as ``CatalogueApprovalStep``
rows; every decision is a ``TicketApproval`` row of the request ticket (the approvals changes use),
its ``round`` being the step's number, so one person decides once per step and the ticket's history
shows every decision. Then the item's fulfilment tasks open stage by stage (tasks of one stage run
in parallel); completing the last one fulfils the item, and the last item closes the request. A task
that delivers a CI takes one of the class from stock (``in_stock``) and moves it to ``deployed``,
assigned to the person the order is for, through cmdb.services, so the CI's history says so.
"""
