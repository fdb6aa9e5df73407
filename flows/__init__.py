"""The SupportFlow and the collaborators it is wired with."""

from supportdesk._offline import import_crewai

import_crewai()  # before any submodule: CrewAI without its import-time load_dotenv() (see supportdesk._offline)

from supportdesk.flows.services import SupportServices, build_services

__all__ = ["SupportFlow", "SupportServices", "build_services"]


def __getattr__(name: str):  # noqa: ANN202 - importing crewai is deferred until the flow is used
    if name == "SupportFlow":
        from supportdesk.flows.support_flow import SupportFlow

        return SupportFlow
    raise AttributeError(name)
