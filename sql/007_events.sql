-- SPDX-License-Identifier: Apache-2.0
-- 007: state changes of workspaces and VMs as PostgreSQL notifications on
-- the channel 'vigo_events', for vigod's event stream (GET /v1/events,
-- web/event_hub.h). A notification is sent when the row is created and each
-- time its state changes, and only when the transaction commits, so a
-- listener never sees a state that was rolled back. Whoever changes the
-- state (any vigod, an administrator's UPDATE in psql) is heard.
--
-- The payload is one JSON object (well under pg_notify's 8000 bytes: the
-- error text is cut to 500 characters):
--   {"kind": "workspace"|"vm", "id", "workspace_id", "owner_id", "name",
--    "state", "error", "at"}

CREATE FUNCTION gis.notify_state_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  r jsonb := to_jsonb(NEW);
BEGIN
  PERFORM pg_notify('vigo_events', jsonb_build_object(
    'kind', TG_ARGV[0],
    'id', NEW.id,
    'workspace_id', coalesce((r ->> 'workspace_id')::bigint, NEW.id),
    'owner_id', NEW.owner_id,
    'name', NEW.name,
    'state', NEW.state::text,
    'error', left(coalesce(r ->> 'error', ''), 500),
    'at', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))::text);
  RETURN NULL;
END $$;

CREATE TRIGGER workspaces_created AFTER INSERT ON gis.workspaces
  FOR EACH ROW EXECUTE FUNCTION gis.notify_state_change('workspace');
CREATE TRIGGER workspaces_state_changed AFTER UPDATE OF state ON gis.workspaces
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
  EXECUTE FUNCTION gis.notify_state_change('workspace');
CREATE TRIGGER vms_created AFTER INSERT ON gis.vms
  FOR EACH ROW EXECUTE FUNCTION gis.notify_state_change('vm');
CREATE TRIGGER vms_state_changed AFTER UPDATE OF state ON gis.vms
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
  EXECUTE FUNCTION gis.notify_state_change('vm');
