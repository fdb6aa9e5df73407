"""The triage crew, its tools and prompts (CrewAI)."""

from supportdesk._offline import import_crewai

import_crewai()  # before any submodule: CrewAI without its import-time load_dotenv() (see supportdesk._offline)
