# Source this to use the project environment in a shell: . workflow/bin/env.sh
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$_root/.venv/bin/activate"
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///$_root/mlflow.db}"
export MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1 DO_NOT_TRACK=1
unset _root
