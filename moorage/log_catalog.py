"""The lines Moorage writes into deployment and snapshot logs, as English templates.

A deployment's log (and a snapshot's) is stored as the English text Moorage wrote,
``HH:MM:SS <line>`` per line, so the API, the CLI and a ``curl`` read the same words.
The UI shows it in the reader's language: ``web/src/lib/loglines.ts`` matches each line
against these templates (kept as ``loglines.<code>`` in ``web/src/lib/i18n/en.json``,
translated under the same key in every other language) and, on a match, renders the
reader's template with the values it read out of the line. A line no template matches
(Docker's own pull progress, a third-party kind's lines) is shown as written.

``{name}`` in a template is a value taken from the line as it is (a container name, a
reason, an engine's error). Templates are matched longest literal text first, so
``removed the previous container {name}`` wins over ``removed {name}``.

Every line the built-in kinds, the deploy queue and the capture's quiesce step write
has its template here: ``tests/unit/test_log_catalog.py`` reads their source and fails
on a line with none, and checks the UI's languages hold every template. Adding a line:
write it, add its template here under a new code, then the same code to ``en.json``
(the template itself) and ``ru.json`` (its translation, with the same placeholders).
"""

from __future__ import annotations

from moorage.program_output import HIDDEN

TEMPLATES: dict[str, str] = {
    # deployer/queue.py, services/deployment_runs.py
    "deploying": "deploying {kind} workload {name} ({reason})",
    "again": "running what deployment {deployment} ran, again ({reason})",
    "failed": "deploy failed: {reason}",
    "internal_error": "internal error: {kind}",
    "succeeded": "deploy succeeded",
    "chain": "queued chain: {workloads}",
    "interrupted": "interrupted by a restart",
    "truncated": "... log truncated",
    # sources/image/deploy.py
    "image_present": "image {image} is present ({id})",
    "pulling": "pulling {image}",
    "pulling_as": "pulling {image} as {username}",
    "candidate_started": "started the candidate {name} on a port of its own",
    "candidate_failed": "the candidate failed: {reason}",
    "candidate_removed": "removed the candidate {name}; the previous container kept serving",
    "candidate_passed": "the candidate passed; removed {name}",
    "ports_held": "the new container needs host ports the old one holds: checking it first",
    "stopped": "stopped {name}",
    "created": "created {name}",
    "started": "started {name}",
    "removed": "removed {name}",
    "previous_started": "started the previous container {name} again",
    "previous_removed": "removed the previous container {name}",
    "stray_image": "{prefix}removed {name}: it does not run the deployed image",
    "unpaused_prefixed": "{prefix}unpaused {name}",
    "started_again_prefixed": "{prefix}started {name} again",
    "recreated": "{prefix}recreated {name} from {image}",
    "stray_removed": "reconcile: removed stray container {name}",
    "not_deployed_removed": "removed {name}, which the last good deployment does not run",
    # sources/image/health.py
    "health_cmd": "health: waiting for `{command}` to succeed (up to {seconds} s)",
    "health_http": "health: waiting for HTTP {path} to answer (up to {seconds} s)",
    "health_image": "health: waiting for the image's HEALTHCHECK to report healthy "
    "(up to {seconds} s)",
    "health_grace": "health: the container must keep running for {seconds} s",
    "healthy": "health: healthy",
    "health_waiting": "health: still waiting, {elapsed} s of {seconds} s",
    "health_waiting_last": "health: still waiting, {elapsed} s of {seconds} s ({last})",
    # sources/compose/deploy.py
    "compose_written": "wrote {file} (sha256 {digest})",
    "compose_unchanged": "{file} unchanged (sha256 {digest}); not rewritten",
    "compose_rollback": "rolling back to the previous compose file",
    "compose_rollback_failed": "rollback did not settle either: {reason}",
    "volume_removed": "removed the volume {name}",
    "compose_reconcile": "reconcile: bringing the compose project back up",
    # snapshots/quiesce.py
    "quiesce_stopped": "stopped {name} for the capture",
    "quiesce_paused": "paused {name} for the capture",
    "resumed_started": "started {name} again",
    "resumed_unpaused": "unpaused {name}",
    "resume_failed": "could not resume {name}: {reason}; reconcile will retry",
    # sources/image/sandbox.py (restore drills)
    "sandbox_created": "created {name} from {image} on {network}, no published port",
    # Why a deploy failed: the deployment's ``error`` and its "deploy failed: {reason}"
    # line (``DeployFailed`` in the same files; a reason inside a line is read in turn)
    "reason_stopped": "workload {name} is stopped; this deploy ({reason}) does not start it: "
    "start it, or deploy it again by hand",
    "reason_nothing_to_rerun": "this workload has no deployment to run again",
    "reason_volume_missing": "volume {name}: {path} does not exist; create it first",
    "reason_disappeared": "the new container disappeared while starting",
    "reason_not_healthy_why": "not healthy after {seconds} s: {last}",
    "reason_not_healthy": "not healthy after {seconds} s",
    "reason_healthcheck_unhealthy": "the image's HEALTHCHECK reports unhealthy",
    # ``reason_died_output``, ``reason_sandbox_exited`` and ``probe_command`` are read in
    # rows written before program output was marked (moorage/program_output.py)
    "reason_died_output": "the container {state} (exit code {code}); its last output: {output}",
    "reason_died": "the container {state} (exit code {code})",
    "reason_died_marked": "the container {state} (exit code {code}); its last output:\n{output}",
    "reason_not_healthy_marked": "not healthy after {seconds} s: {last}; its last output:\n"
    "{output}",
    "reason_image_gone": "the deployed image {image} is no longer on this host",
    "reason_sandbox_disappeared": "the sandbox container disappeared",
    "reason_sandbox_exited": "the container exited ({code}): {output}",
    "reason_sandbox_exited_plain": "the container exited ({code})",
    "reason_sandbox_exited_marked": "the container exited ({code}); its last output:\n{output}",
    "reason_sandbox_unhealthy": "not healthy in time: {last}",
    "reason_internal": "internal error; the server log has the details",
    # sources/compose/rollout.py, deploy.py, sandbox.py
    "rollout_started": "service {service}: started {name} beside {count} running",
    "rollout_switched": "service {service}: switched to {name}; removed the old container",
    "rollout_not_removed": "service {service}: could not remove {name}: {reason}",
    "rollout_kept": "deploy failed: {reason}; the running version keeps serving",
    "reason_rollout_none": "service {service}: no new container beside the old one: {reason}",
    "reason_rollout": "service {service}: {reason}",
    "sandbox_stack_started": "started {count} services as {project} on {network}, "
    "no published port",
    "reason_sandbox_no_services": "the deployed Compose file has no services",
    "reason_sandbox_no_file": "the workload has no deployed Compose file to drill",
    "reason_sandbox_namespace": "service {service} uses {key} {mode}: a drill cannot keep it "
    "apart from the host and the live stack",
    "reason_sandbox_volumes_from": "service {service} takes volumes_from {source}: a drill "
    "would share them with the live stack",
    "reason_sandbox_shared": "{reason}: a drill would share it with the live stack",
    # sources/image/health.py: the last probe's answer, inside a health line or reason
    "probe_state": "container is {state}",
    "probe_command": "command exited {code}: {output}",
    "probe_command_exit": "command exited {code}",
    "probe_no_port": "an http health check needs a published tcp port",
    "probe_unpublished": "container port {port} is not published",
    "probe_http_error": "GET {path}: {error}",
    "probe_http": "GET {path} answered {status}",
    "probe_healthcheck": "HEALTHCHECK status {status}",
    "probe_grace": "still in the grace period",
    # moorage/program_output.py: what a viewer reads in place of a program's output
    "program_output_hidden": HIDDEN,
}
"""Code -> English template; a code never changes meaning once released (the UI's
languages key their translations by it)."""
