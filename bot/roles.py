"""Role names and the one place that works out which roles an openid holds."""
from __future__ import annotations

from typing import Callable

from sqlalchemy import String, bindparam, exists, select
from sqlalchemy.orm import Session

CADRE = "cadre"            # bound as the cadre or as a family member acting for one
FAMILY = "family"          # bound as a family member (also holds CADRE)
GROUP_ADMIN = "group_admin"
STAFF = "staff"
SUPERVISOR = "supervisor"  # also holds STAFF
ON_DUTY = "on_duty"        # staff currently on duty (shapes the menu, grants nothing)

# A resolver gives, for an openid, the roles it may hold, each as a SQL condition: the router
# asks every condition of every resolver in one statement (one round trip per message). The
# openid it is given is a bound parameter (RoleQuery), so it may only be used inside SQL.
RoleResolver = Callable[[str], dict]


def base_roles(openid: str) -> dict:
    """Roles that come from bindings and the staff table, as conditions."""
    from models import Binding, Staff

    staff = (Staff.openid == openid, Staff.active.is_(True))
    return {CADRE: exists().where(Binding.openid == openid),
            FAMILY: exists().where(Binding.openid == openid, Binding.relation == "family"),
            STAFF: exists().where(*staff),
            ON_DUTY: exists().where(*staff, Staff.on_duty.is_(True)),
            SUPERVISOR: exists().where(*staff, Staff.role == SUPERVISOR)}


class RoleQuery:
    """The one roles statement, built once from the resolvers with the openid as a bound
    parameter: building six EXISTS and their cache key on every message cost more CPU than
    running them."""

    def __init__(self, resolvers):
        conditions = {}
        for resolver in resolvers:
            conditions.update(resolver(bindparam("openid", type_=String)))
        self.names = list(conditions)
        self.statement = select(*(conditions[n] for n in self.names))

    def __call__(self, session: Session, openid: str) -> set[str]:
        """Every role the openid holds."""
        return self.held(session.execute(self.statement, {"openid": openid}).one())

    def along(self, statement):
        """`statement` (a select of one row, its openid the bound `openid`) with the role
        conditions as extra columns: a message's follower and its roles in one round trip."""
        return statement.add_columns(*self.statement.selected_columns)

    def held(self, flags) -> set[str]:
        """The roles whose columns are true, from the role columns of a row."""
        return {name for name, yes in zip(self.names, flags) if yes}


def roles_in(session: Session, resolvers, openid: str) -> set[str]:
    """Every role the openid holds, from every resolver, in one statement."""
    return RoleQuery(resolvers)(session, openid)


def has_role(roles: set[str], required: str | None) -> bool:
    """Whether a user holding `roles` may run a rule that requires `required`."""
    return required is None or required in roles
