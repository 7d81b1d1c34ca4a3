-- SPDX-License-Identifier: Apache-2.0
-- 005: roles and row-level security.
--
--   vigo_reader  administrators' read-only SQL: every table and view, no
--                writes, no token digests. Grant it to a login role:
--                CREATE ROLE alice LOGIN IN ROLE vigo_reader;
--   vigo_daemon  the services (vigod, host agents): reads and writes.
--   vigo_user    the role the service takes for one user's request
--                (SET LOCAL ROLE vigo_user + vigo.user_id); it sees only
--                that user's own row, workspaces, VMs, checkpoints and
--                tokens, and public images plus its own.
-- Roles are cluster-wide, so they are created only when missing.

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vigo_reader') THEN
    CREATE ROLE vigo_reader NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vigo_daemon') THEN
    CREATE ROLE vigo_daemon NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vigo_user') THEN
    CREATE ROLE vigo_user NOLOGIN;
  END IF;
  IF NOT pg_has_role('vigo_daemon', 'vigo_user', 'MEMBER') THEN
    GRANT vigo_user TO vigo_daemon;
  END IF;
END $$;

-- The user a request acts for; NULL (sees nothing) when unset.
CREATE FUNCTION gis.request_user_id() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
RETURN nullif(current_setting('vigo.user_id', true), '')::bigint;

REVOKE ALL ON SCHEMA gis FROM PUBLIC;
GRANT USAGE ON SCHEMA gis TO vigo_reader, vigo_daemon, vigo_user;

GRANT SELECT ON ALL TABLES IN SCHEMA gis TO vigo_reader;
REVOKE SELECT ON gis.api_tokens FROM vigo_reader;
GRANT SELECT (id, user_id, label, created_at, expires_at, revoked_at) ON gis.api_tokens TO vigo_reader;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA gis TO vigo_daemon;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA gis TO vigo_daemon;

GRANT SELECT ON gis.users, gis.sites, gis.networks, gis.hosts, gis.profiles, gis.futures, gis.images,
                gis.workspaces, gis.vms, gis.checkpoints, gis.machines, gis.machines_with_nature,
                gis.capacity_by_network, gis.capacity_by_site, gis.vm_placement TO vigo_user;

-- Functions that write are for the daemon only.
DO $$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'gis' AND p.provolatile = 'v' AND p.prorettype <> 'trigger'::regtype
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO vigo_daemon', f);
  END LOOP;
END $$;

ALTER TABLE gis.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE gis.workspaces ENABLE ROW LEVEL SECURITY;
ALTER TABLE gis.vms ENABLE ROW LEVEL SECURITY;
ALTER TABLE gis.checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE gis.api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE gis.images ENABLE ROW LEVEL SECURITY;

CREATE POLICY staff ON gis.users TO vigo_reader, vigo_daemon USING (true) WITH CHECK (true);
CREATE POLICY staff ON gis.workspaces TO vigo_reader, vigo_daemon USING (true) WITH CHECK (true);
CREATE POLICY staff ON gis.vms TO vigo_reader, vigo_daemon USING (true) WITH CHECK (true);
CREATE POLICY staff ON gis.checkpoints TO vigo_reader, vigo_daemon USING (true) WITH CHECK (true);
CREATE POLICY staff ON gis.api_tokens TO vigo_reader, vigo_daemon USING (true) WITH CHECK (true);
CREATE POLICY staff ON gis.images TO vigo_reader, vigo_daemon USING (true) WITH CHECK (true);

CREATE POLICY own ON gis.users TO vigo_user USING (id = gis.request_user_id());
CREATE POLICY own ON gis.workspaces TO vigo_user USING (owner_id = gis.request_user_id());
CREATE POLICY own ON gis.vms TO vigo_user USING (owner_id = gis.request_user_id());
CREATE POLICY own ON gis.checkpoints TO vigo_user USING (owner_id = gis.request_user_id());
CREATE POLICY own ON gis.api_tokens TO vigo_user USING (user_id = gis.request_user_id());
CREATE POLICY own_or_public ON gis.images TO vigo_user
  USING (owner_id IS NULL OR owner_id = gis.request_user_id());
