"""The partial indexes on open tickets hold exactly the states the workflow calls not done."""

import re

from sqlalchemy import inspect

from tickets import models, workflow


def test_the_open_condition_is_the_workflows(db):
    assert set(re.findall(r"'(\w+)'", models._OPEN)) == set(workflow.DONE_STATES)
    names = {index["name"] for index in inspect(db.session.connection()).get_indexes("ticket")}
    assert {"ix_ticket_open_queue", "ix_ticket_open_due", "ix_ticket_open_priority"} <= names
