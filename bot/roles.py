"""Role names and the one place that works out which roles an openid holds."""
from __future__ import annotations

from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

CADRE = "cadre"            # bound as the cadre or as a family member acting for one
FAMILY = "family"          # bound as a family member (also holds CADRE)
GROUP_ADMIN = "group_admin"
STAFF = "staff"
SUPERVISOR = "supervisor"  # also holds STAFF
ON_DUTY = "on_duty"        # staff currently on duty (shapes the menu, grants nothing)

RoleResolver = Callable[[Session, str], set]


def base_roles(session: Session, openid: str) -> set[str]:
    """Roles that come from bindings and the staff table."""
    from models import Binding, Staff

    roles: set[str] = set()
    relations = session.scalars(select(Binding.relation).where(Binding.openid == openid)).all()
    if relations:
        roles.add(CADRE)
    if "family" in relations:
        roles.add(FAMILY)
    staff = session.execute(select(Staff.role, Staff.on_duty).where(
        Staff.openid == openid, Staff.active.is_(True))).first()
    if staff:
        roles.add(STAFF)
        if staff.on_duty:
            roles.add(ON_DUTY)
        if staff.role == SUPERVISOR:
            roles.add(SUPERVISOR)
    return roles


def has_role(roles: set[str], required: str | None) -> bool:
    """Whether a user holding `roles` may run a rule that requires `required`."""
    return required is None or required in roles
