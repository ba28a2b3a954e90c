"""Every model, imported in one place for Alembic and for create_all in tests."""

from depot.audit.models import AuditEvent  # noqa: F401
from depot.credentials.models import Credential  # noqa: F401
from depot.database.core import Base  # noqa: F401
from depot.deployments.models import Deployment, HostResult, Run, Step  # noqa: F401
from depot.hosts.models import Host  # noqa: F401
from depot.notifications.models import Delivery, Subscription  # noqa: F401
from depot.orchestration.models import Transition  # noqa: F401
from depot.packages.models import Package  # noqa: F401
from depot.policies.models import Policy  # noqa: F401
from depot.scheduling.models import MaintenanceWindow  # noqa: F401
from depot.targets.models import Target  # noqa: F401
from depot.users.models import ApiToken, User  # noqa: F401
