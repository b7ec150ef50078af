"""Who may do what on the dashboard and its API, as Airflow's auth manager decides it.

Three kinds of people use the dashboard, and the auth manager in force (the simple one, or
FAB) already knows them by their Airflow role, so the dashboard asks it rather than keeping
roles of its own:

- **readers** (support agents and everyone else with the UI's read access): the dashboard,
  the quarantine browser and the support lookup: ``is_authorized_custom_view(GET)``;
- **operators**: pause, resume and roll back a market, which is what running the market's
  DAGs by hand allows (``is_authorized_dag(PUT, RUN)`` on the market's cutover DAG: the simple
  auth manager's ``user`` role and above, FAB's DAG run editors);
- **administrators**: the log of lookups (who looked up whom), which is personal data about
  the people asked for and the people asking: those who may read Airflow's connections, and so
  the databases' credentials (``is_authorized_connection(GET)``: the simple auth manager's
  ``op`` and ``admin`` roles, FAB's admins). Not ``is_authorized_configuration``, which the
  simple auth manager grants every viewer for GET.

Each is a FastAPI dependency that answers 403 to anyone else.

With the FAB auth manager (the production stack's), a role reads the dashboard only once it
holds ``can_read`` on ``POCO migration``: FAB knows Airflow's own resources, not a plugin's,
so ``poco-migration grant-dashboard`` gives it to the roles that read (Admin, Op, User, Viewer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, status

from poco_migration.dag_common import cutover_dag_id

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

RESOURCE = "POCO migration"
# FAB's roles that read the dashboard: every role of Airflow's; which of them operate or
# administer follows from their rights on DAG runs and connections.
FAB_READERS = ("Admin", "Op", "User", "Viewer")


def _user_dependency() -> Any:
    from airflow.api_fastapi.core_api.security import get_user

    return Depends(get_user)


def _auth_manager() -> Any:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def may_read(user: BaseUser) -> bool:
    return bool(_auth_manager().is_authorized_custom_view(method="GET", resource_name=RESOURCE, user=user))


def may_operate(user: BaseUser, market: str | None = None) -> bool:
    """Whether the user may run the market's DAGs by hand (any market's, without one)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    details = DagDetails(id=cutover_dag_id(market)) if market else None
    return bool(
        _auth_manager().is_authorized_dag(method="PUT", access_entity=DagAccessEntity.RUN, details=details, user=user)
    )


def may_administer(user: BaseUser) -> bool:
    return bool(_auth_manager().is_authorized_connection(method="GET", user=user))


def _refused(what: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, f"Forbidden: {what}")


def reader(user: Annotated[Any, _user_dependency()]) -> Any:
    if not may_read(user):
        raise _refused("reading the POCO migration dashboard needs the UI's read access")
    return user


def operator(market: str, user: Annotated[Any, _user_dependency()]) -> Any:
    if not may_operate(user, market.upper()):
        raise _refused(f"pausing, resuming or rolling back {market.upper()} needs the right to run its DAGs")
    return user


def administrator(user: Annotated[Any, _user_dependency()]) -> Any:
    if not may_administer(user):
        raise _refused("the lookup log is for administrators")
    return user


def grant_fab_read(roles: tuple[str, ...] = FAB_READERS) -> None:
    """Give FAB roles ``can_read`` (and the menu entry) on the dashboard; idempotent."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        manager = appbuilder.sm
        permissions = [manager.create_permission(action, RESOURCE) for action in ("can_read", "menu_access")]
        for name in roles:
            role = manager.find_role(name)
            if role is None:
                raise ValueError(
                    f"FAB has no role {name!r} (roles: {', '.join(r.name for r in manager.get_all_roles())})"
                )
            for permission in permissions:
                manager.add_permission_to_role(role, permission)
