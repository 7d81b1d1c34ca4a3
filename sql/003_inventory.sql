-- SPDX-License-Identifier: Apache-2.0
-- 003: registering resources, heartbeats, claims, and the views that show
-- physical, virtual and future resources side by side.
--
-- Error convention of every gis function (the C++ layer maps SQLSTATE to
-- vigo::ErrorCode, and takes the field from the message):
--   22023  invalid <field>: <reason>          bad input, nothing written
--   VG404  invalid <field>: no <kind> named … an unknown referenced object
--   VG001  host … has no room / is not up      capacity gone (retry elsewhere)
--   VG002  future … is no longer available     a future that cannot be claimed
--   23505  invalid <field>: … already exists   a taken name

-- ------------------------------------------------------------ registration
CREATE FUNCTION gis.add_site(p_name text, p_description text DEFAULT '') RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  PERFORM gis.check_name('name', p_name);
  IF p_description IS NULL OR length(p_description) > 1000 THEN
    RAISE EXCEPTION 'invalid description: must be at most 1000 characters' USING ERRCODE = '22023';
  END IF;
  INSERT INTO gis.sites (name, description) VALUES (p_name, p_description)
  ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description
  RETURNING id INTO v_id;
  RETURN v_id;
END $$;

-- Looks up the id of a named site, network, profile or host; the error
-- names the caller's field. The table comes from a fixed list, the name
-- travels as a parameter.
CREATE FUNCTION gis.id_by_name(p_kind text, p_field text, p_name text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_table text := CASE p_kind WHEN 'site' THEN 'sites' WHEN 'network' THEN 'networks'
                              WHEN 'profile' THEN 'profiles' WHEN 'host' THEN 'hosts' END;
  v_id bigint;
BEGIN
  IF v_table IS NULL THEN
    RAISE EXCEPTION 'id_by_name: unknown kind %', p_kind;
  END IF;
  PERFORM gis.check_name(p_field, p_name);
  EXECUTE format('SELECT id FROM gis.%I WHERE name = $1', v_table) INTO v_id USING p_name;
  IF v_id IS NULL THEN
    RAISE EXCEPTION 'invalid %: no % named %', p_field, p_kind, quote_literal(p_name) USING ERRCODE = 'VG404';
  END IF;
  RETURN v_id;
END $$;

CREATE FUNCTION gis.site_id(p_field text, p_site text) RETURNS bigint
LANGUAGE sql STABLE RETURN gis.id_by_name('site', p_field, p_site);
CREATE FUNCTION gis.network_id(p_field text, p_network text) RETURNS bigint
LANGUAGE sql STABLE RETURN gis.id_by_name('network', p_field, p_network);
CREATE FUNCTION gis.profile_id(p_field text, p_profile text) RETURNS bigint
LANGUAGE sql STABLE RETURN gis.id_by_name('profile', p_field, p_profile);
CREATE FUNCTION gis.host_id(p_field text, p_host text) RETURNS bigint
LANGUAGE sql STABLE RETURN gis.id_by_name('host', p_field, p_host);


CREATE FUNCTION gis.add_network(p_name text, p_site text, p_cidr cidr DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_site bigint;
  v_id bigint;
BEGIN
  PERFORM gis.check_name('name', p_name);
  v_site := gis.site_id('site', p_site);
  INSERT INTO gis.networks (name, site_id, cidr) VALUES (p_name, v_site, p_cidr)
  ON CONFLICT (name) DO UPDATE SET site_id = EXCLUDED.site_id, cidr = EXCLUDED.cidr
  RETURNING id INTO v_id;
  RETURN v_id;
END $$;

CREATE FUNCTION gis.add_profile(p_name text, p_vcpus integer, p_memory_mb bigint,
                                p_disk_gb bigint DEFAULT 0, p_arch text DEFAULT 'x86_64') RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  PERFORM gis.check_name('name', p_name);
  PERFORM gis.check_range('vcpus', p_vcpus, 1, 1024);
  PERFORM gis.check_range('memory_mb', p_memory_mb, 16, 16777216);
  PERFORM gis.check_range('disk_gb', p_disk_gb, 0, 1048576);
  PERFORM gis.check_arch('arch', p_arch);
  INSERT INTO gis.profiles (name, vcpus, memory_mb, disk_gb, arch)
  VALUES (p_name, p_vcpus, p_memory_mb, p_disk_gb, p_arch)
  ON CONFLICT (name) DO UPDATE
    SET vcpus = EXCLUDED.vcpus, memory_mb = EXCLUDED.memory_mb, disk_gb = EXCLUDED.disk_gb, arch = EXCLUDED.arch
  RETURNING id INTO v_id;
  RETURN v_id;
END $$;

-- Image and data servers: a name, a site and an endpoint each.
CREATE FUNCTION gis.add_server(p_kind text, p_name text, p_site text, p_endpoint text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_table text := CASE p_kind WHEN 'image' THEN 'image_servers' WHEN 'data' THEN 'data_servers' END;
  v_site bigint := gis.site_id('site', p_site);
  v_id bigint;
BEGIN
  IF v_table IS NULL THEN
    RAISE EXCEPTION 'add_server: unknown kind %', p_kind;
  END IF;
  PERFORM gis.check_name('name', p_name);
  IF p_endpoint IS NULL OR length(p_endpoint) NOT BETWEEN 1 AND 512 THEN
    RAISE EXCEPTION 'invalid endpoint: must be 1-512 characters' USING ERRCODE = '22023';
  END IF;
  EXECUTE format('INSERT INTO gis.%I (name, site_id, endpoint) VALUES ($1, $2, $3) '
                 'ON CONFLICT (name) DO UPDATE SET site_id = EXCLUDED.site_id, endpoint = EXCLUDED.endpoint '
                 'RETURNING id', v_table)
    INTO v_id USING p_name, v_site, p_endpoint;
  RETURN v_id;
END $$;

CREATE FUNCTION gis.add_image_server(p_name text, p_site text, p_endpoint text) RETURNS bigint
LANGUAGE sql RETURN gis.add_server('image', p_name, p_site, p_endpoint);
CREATE FUNCTION gis.add_data_server(p_name text, p_site text, p_endpoint text) RETURNS bigint
LANGUAGE sql RETURN gis.add_server('data', p_name, p_site, p_endpoint);

CREATE FUNCTION gis.add_user(p_name text, p_is_admin boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  PERFORM gis.check_name('name', p_name);
  INSERT INTO gis.users (name, is_admin) VALUES (p_name, coalesce(p_is_admin, false))
  ON CONFLICT (name) DO UPDATE SET is_admin = EXCLUDED.is_admin
  RETURNING id INTO v_id;
  RETURN v_id;
END $$;

CREATE FUNCTION gis.add_workspace(p_owner text, p_name text, p_persistent boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_owner bigint;
  v_id bigint;
BEGIN
  PERFORM gis.check_name('owner', p_owner);
  PERFORM gis.check_name('name', p_name);
  SELECT id INTO v_owner FROM gis.users WHERE name = p_owner;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'invalid owner: no user named %', quote_literal(p_owner) USING ERRCODE = 'VG404';
  END IF;
  IF EXISTS (SELECT 1 FROM gis.workspaces WHERE owner_id = v_owner AND name = p_name AND state <> 'deleted') THEN
    RAISE EXCEPTION 'invalid name: user % already has a workspace named %', p_owner, quote_literal(p_name)
      USING ERRCODE = '23505';
  END IF;
  INSERT INTO gis.workspaces (owner_id, name, persistent) VALUES (v_owner, p_name, coalesce(p_persistent, false))
  RETURNING id INTO v_id;
  RETURN v_id;
END $$;

-- Registers or updates hosts in one statement; arrays are parallel, one
-- element per host. Either every host is written or none is. A host that
-- was down and registers again is up.
CREATE FUNCTION gis.register_hosts(p_names text[], p_networks text[], p_libvirt_uris text[],
                                   p_cpus integer[], p_memory_mb bigint[], p_disk_gb bigint[],
                                   p_arch text[] DEFAULT NULL, p_labels jsonb[] DEFAULT NULL)
RETURNS TABLE (host_id bigint, host text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  n integer := coalesce(cardinality(p_names), 0);
  r record;
  f text;
BEGIN
  PERFORM gis.check_range('hosts', n, 1, 100000);
  IF coalesce(cardinality(p_networks), 0) <> n OR coalesce(cardinality(p_libvirt_uris), 0) <> n
     OR coalesce(cardinality(p_cpus), 0) <> n OR coalesce(cardinality(p_memory_mb), 0) <> n
     OR coalesce(cardinality(p_disk_gb), 0) <> n
     OR (p_arch IS NOT NULL AND cardinality(p_arch) <> n)
     OR (p_labels IS NOT NULL AND cardinality(p_labels) <> n) THEN
    RAISE EXCEPTION 'invalid hosts: the arrays must all have % elements', n USING ERRCODE = '22023';
  END IF;

  CREATE TEMP TABLE IF NOT EXISTS pg_temp.host_batch
    (i integer, name text, network text, network_id bigint, uri text, cpus integer,
     memory_mb bigint, disk_gb bigint, arch text, labels jsonb) ON COMMIT DROP;
  TRUNCATE pg_temp.host_batch;
  INSERT INTO pg_temp.host_batch
  SELECT u.i, u.name, u.network, nw.id, u.uri, u.cpus, u.memory_mb, u.disk_gb,
         coalesce(u.arch, 'x86_64'), coalesce(u.labels, '{}')
    FROM unnest(p_names, p_networks, p_libvirt_uris, p_cpus, p_memory_mb, p_disk_gb,
                coalesce(p_arch, array_fill(NULL::text, ARRAY[n])),
                coalesce(p_labels, array_fill(NULL::jsonb, ARRAY[n])))
           WITH ORDINALITY AS u(name, network, uri, cpus, memory_mb, disk_gb, arch, labels, i)
    LEFT JOIN gis.networks nw ON nw.name = u.network;

  -- The first bad row, checked field by field so the error names the field.
  SELECT * INTO r FROM pg_temp.host_batch b
   WHERE b.name IS NULL OR NOT gis.valid_name(b.name) OR b.network_id IS NULL
      OR b.uri IS NULL OR length(b.uri) NOT BETWEEN 1 AND 512
      OR b.cpus IS NULL OR b.cpus NOT BETWEEN 1 AND 4096
      OR b.memory_mb IS NULL OR b.memory_mb NOT BETWEEN 64 AND 67108864
      OR b.disk_gb IS NULL OR b.disk_gb NOT BETWEEN 0 AND 1048576
      OR b.arch !~ '^[a-z0-9_]{1,16}$' OR jsonb_typeof(b.labels) <> 'object'
   ORDER BY b.i LIMIT 1;
  IF FOUND THEN
    f := format('hosts[%s].', r.i);
    PERFORM gis.check_name(f || 'name', r.name);
    PERFORM gis.network_id(f || 'network', r.network);
    IF r.uri IS NULL OR length(r.uri) NOT BETWEEN 1 AND 512 THEN
      RAISE EXCEPTION 'invalid %libvirt_uri: must be 1-512 characters', f USING ERRCODE = '22023';
    END IF;
    PERFORM gis.check_range(f || 'cpus', r.cpus, 1, 4096);
    PERFORM gis.check_range(f || 'memory_mb', r.memory_mb, 64, 67108864);
    PERFORM gis.check_range(f || 'disk_gb', r.disk_gb, 0, 1048576);
    PERFORM gis.check_arch(f || 'arch', r.arch);
    PERFORM gis.check_labels(f || 'labels', r.labels);
  END IF;
  SELECT d.i, d.name INTO r
    FROM (SELECT b.i, b.name, row_number() OVER (PARTITION BY b.name ORDER BY b.i) AS nth
            FROM pg_temp.host_batch b) d
   WHERE d.nth > 1 ORDER BY d.i LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'invalid hosts[%].name: % appears twice in the batch', r.i, quote_literal(r.name)
      USING ERRCODE = '22023';
  END IF;

  BEGIN
    RETURN QUERY
    INSERT INTO gis.hosts AS h (name, network_id, libvirt_uri, cpus, memory_mb, disk_gb, arch, labels)
    SELECT b.name, b.network_id, b.uri, b.cpus, b.memory_mb, b.disk_gb, b.arch, b.labels
      FROM pg_temp.host_batch b ORDER BY b.i
    ON CONFLICT (name) DO UPDATE
      SET network_id = EXCLUDED.network_id, libvirt_uri = EXCLUDED.libvirt_uri, cpus = EXCLUDED.cpus,
          memory_mb = EXCLUDED.memory_mb, disk_gb = EXCLUDED.disk_gb, arch = EXCLUDED.arch,
          labels = EXCLUDED.labels,
          state = CASE WHEN h.state = 'down' THEN 'up'::gis.host_state ELSE h.state END
    RETURNING h.id, h.name;
  EXCEPTION WHEN check_violation THEN
    RAISE EXCEPTION 'invalid hosts: a host would have less capacity than its VMs hold (%)', SQLERRM
      USING ERRCODE = '22023';
  END;

  INSERT INTO gis.host_heartbeats (host_id)
  SELECT h.id FROM gis.hosts h JOIN pg_temp.host_batch b ON b.name = h.name
  ON CONFLICT (host_id) DO UPDATE SET last_seen = now();
END $$;

-- Records that the given hosts are alive. Returns the ids that name no host
-- (those must register again); down hosts that beat again are up.
CREATE FUNCTION gis.record_heartbeats(p_hosts bigint[]) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
  updated integer;
  unknown bigint[];
BEGIN
  IF p_hosts IS NULL OR cardinality(p_hosts) = 0 THEN
    RETURN '{}';
  END IF;
  PERFORM gis.check_range('hosts', cardinality(p_hosts), 1, 1000000);
  UPDATE gis.host_heartbeats hb SET last_seen = now() WHERE hb.host_id = ANY (p_hosts);
  GET DIAGNOSTICS updated = ROW_COUNT;
  UPDATE gis.hosts h SET state = 'up' WHERE h.id = ANY (p_hosts) AND h.state = 'down';
  -- Only a short count (an unknown id, or a repeated one) pays for the search.
  IF updated < cardinality(p_hosts) THEN
    SELECT coalesce(array_agg(DISTINCT x), '{}') INTO unknown FROM unnest(p_hosts) x
     WHERE NOT EXISTS (SELECT 1 FROM gis.host_heartbeats hb WHERE hb.host_id = x);
    RETURN unknown;
  END IF;
  RETURN '{}';
END $$;

-- Marks down every up or draining host silent for longer than p_silence;
-- their futures are withdrawn by the triggers of 002.
CREATE FUNCTION gis.mark_silent_hosts_down(p_silence interval) RETURNS TABLE (host_id bigint, host text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  IF p_silence IS NULL OR p_silence < interval '1 second' OR p_silence > interval '1 day' THEN
    RAISE EXCEPTION 'invalid silence: must be between 1 second and 1 day' USING ERRCODE = '22023';
  END IF;
  RETURN QUERY
  UPDATE gis.hosts h SET state = 'down'
    FROM gis.host_heartbeats hb
   WHERE hb.host_id = h.id AND h.state IN ('up', 'draining') AND hb.last_seen < now() - p_silence
  RETURNING h.id, h.name;
END $$;

CREATE FUNCTION gis.set_host_state(p_host text, p_state gis.host_state) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint := gis.host_id('host', p_host);
BEGIN
  IF p_state IS NULL THEN
    RAISE EXCEPTION 'invalid state: must not be null' USING ERRCODE = '22023';
  END IF;
  UPDATE gis.hosts SET state = p_state WHERE id = v_id;
END $$;

-- ------------------------------------------------------------------ claims
-- Claims capacity on a host for a new VM (state 'pending') in a workspace.
-- Atomic: the host is locked, must be up, and must have room (VG001).
CREATE FUNCTION gis.claim_on_host(p_host bigint, p_workspace bigint, p_name text,
                                  p_vcpus integer, p_memory_mb bigint, p_disk_gb bigint DEFAULT 0,
                                  p_profile bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  h record;
  v_owner bigint;
  v_id bigint;
BEGIN
  PERFORM gis.check_name('name', p_name);
  PERFORM gis.check_range('vcpus', p_vcpus, 1, 1024);
  PERFORM gis.check_range('memory_mb', p_memory_mb, 16, 16777216);
  PERFORM gis.check_range('disk_gb', p_disk_gb, 0, 1048576);
  SELECT owner_id INTO v_owner FROM gis.workspaces WHERE id = p_workspace AND state <> 'deleted';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'invalid workspace: no workspace with id %', coalesce(p_workspace::text, 'null')
      USING ERRCODE = 'VG404';
  END IF;
  IF EXISTS (SELECT 1 FROM gis.vms WHERE workspace_id = p_workspace AND name = p_name AND state <> 'deleted') THEN
    RAISE EXCEPTION 'invalid name: the workspace already has a VM named %', quote_literal(p_name)
      USING ERRCODE = '23505';
  END IF;
  SELECT id, name, state, arch INTO h FROM gis.hosts WHERE id = p_host FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'invalid host: no host with id %', coalesce(p_host::text, 'null') USING ERRCODE = 'VG404';
  END IF;
  IF h.state <> 'up' THEN
    RAISE EXCEPTION 'host % is %, not up', h.name, h.state USING ERRCODE = 'VG001';
  END IF;
  INSERT INTO gis.vms (workspace_id, owner_id, name, profile_id, vcpus, memory_mb, disk_gb, arch, state, host_id)
  VALUES (p_workspace, v_owner, p_name, p_profile, p_vcpus, p_memory_mb, p_disk_gb, h.arch, 'pending', p_host)
  RETURNING id INTO v_id;
  RETURN v_id;
END $$;

-- Claims one VM of a future (its profile on its host). Fails with VG002 when
-- the future has been withdrawn or its room taken meanwhile.
CREATE FUNCTION gis.claim_future(p_future bigint, p_workspace bigint, p_name text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  f record;
BEGIN
  SELECT fu.host_id, p.id AS profile_id, p.vcpus, p.memory_mb, p.disk_gb INTO f
    FROM gis.futures fu JOIN gis.profiles p ON p.id = fu.profile_id
   WHERE fu.id = p_future;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'future % is no longer available', coalesce(p_future::text, 'null') USING ERRCODE = 'VG002';
  END IF;
  BEGIN
    RETURN gis.claim_on_host(f.host_id, p_workspace, p_name, f.vcpus, f.memory_mb, f.disk_gb, f.profile_id);
  EXCEPTION WHEN SQLSTATE 'VG001' THEN
    RAISE EXCEPTION 'future % is no longer available: %', p_future, SQLERRM USING ERRCODE = 'VG002';
  END;
END $$;

-- Moves a VM to a new state; capacity follows (002). 'deleted' releases it.
CREATE FUNCTION gis.set_vm_state(p_vm bigint, p_state gis.vm_state) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF p_state IS NULL THEN
    RAISE EXCEPTION 'invalid state: must not be null' USING ERRCODE = '22023';
  END IF;
  UPDATE gis.vms SET state = p_state WHERE id = p_vm;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'invalid vm: no VM with id %', coalesce(p_vm::text, 'null') USING ERRCODE = 'VG404';
  END IF;
END $$;

-- ------------------------------------------------------------------- views
-- Every resource with one id space; nature is physical, virtual or future.
CREATE VIEW gis.resources WITH (security_invoker = true) AS
  SELECT id, 'site'::text AS kind, 'physical'::text AS nature, name FROM gis.sites
  UNION ALL SELECT id, 'network', 'physical', name FROM gis.networks
  UNION ALL SELECT id, 'host', 'physical', name FROM gis.hosts
  UNION ALL SELECT id, 'image_server', 'physical', name FROM gis.image_servers
  UNION ALL SELECT id, 'data_server', 'physical', name FROM gis.data_servers
  UNION ALL SELECT id, 'image', 'virtual', name || '@' || version FROM gis.images WHERE deleted_at IS NULL
  UNION ALL SELECT id, 'checkpoint', 'virtual', name FROM gis.checkpoints
  UNION ALL SELECT id, 'workspace', 'virtual', name FROM gis.workspaces WHERE state <> 'deleted'
  UNION ALL SELECT id, 'vm', 'virtual', name FROM gis.vms WHERE state <> 'deleted'
  UNION ALL SELECT f.id, 'future', 'future', p.name || '@' || h.name
              FROM gis.futures f JOIN gis.profiles p ON p.id = f.profile_id JOIN gis.hosts h ON h.id = f.host_id;

-- The virtualization table: each virtual (or future) resource and the
-- physical resources it is made of, with the role of each. It is derived
-- from the foreign keys that hold the truth, so it can never be stale.
CREATE VIEW gis.virtualization WITH (security_invoker = true) AS
  SELECT v.id AS virtual_id, 'vm'::text AS virtual_kind, v.host_id AS physical_id,
         'host'::text AS physical_kind, 'runs_on'::text AS role
    FROM gis.vms v WHERE v.host_id IS NOT NULL AND gis.holds_capacity(v.state)
  UNION ALL
  SELECT v.id, 'vm', h.network_id, 'network', 'attached_to'
    FROM gis.vms v JOIN gis.hosts h ON h.id = v.host_id WHERE gis.holds_capacity(v.state)
  UNION ALL
  SELECT v.id, 'vm', i.image_server_id, 'image_server', 'disk_on'
    FROM gis.vms v JOIN gis.images i ON i.id = v.image_id WHERE v.state <> 'deleted'
  UNION ALL
  SELECT v.id, 'vm', w.data_server_id, 'data_server', 'data_on'
    FROM gis.vms v JOIN gis.workspaces w ON w.id = v.workspace_id
   WHERE v.state <> 'deleted' AND w.data_server_id IS NOT NULL
  UNION ALL
  SELECT w.id, 'workspace', w.data_server_id, 'data_server', 'data_on'
    FROM gis.workspaces w WHERE w.state <> 'deleted' AND w.data_server_id IS NOT NULL
  UNION ALL
  SELECT i.id, 'image', i.image_server_id, 'image_server', 'stored_on'
    FROM gis.images i WHERE i.deleted_at IS NULL
  UNION ALL
  SELECT c.id, 'checkpoint', i.image_server_id, 'image_server', 'stored_on'
    FROM gis.checkpoints c JOIN gis.images i ON i.id = c.memory_image_id
  UNION ALL
  SELECT f.id, 'future', f.host_id, 'host', 'runs_on' FROM gis.futures f
  UNION ALL
  SELECT f.id, 'future', h.network_id, 'network', 'attached_to'
    FROM gis.futures f JOIN gis.hosts h ON h.id = f.host_id;

-- Machines of every nature side by side, with the nature column: hosts, the
-- VMs that exist (not deleted) and the futures (one row per future; slots
-- says how many such VMs fit).
CREATE VIEW gis.machines_with_nature WITH (security_invoker = true) AS
  SELECT h.id, h.name, 'physical'::text AS nature, h.network_id, n.name AS network, h.arch,
         h.cpus AS vcpus, h.memory_mb, h.disk_gb, h.labels, h.state::text AS state, h.id AS host_id
    FROM gis.hosts h JOIN gis.networks n ON n.id = h.network_id
  UNION ALL
  SELECT v.id, v.name, 'virtual', h.network_id, n.name, v.arch, v.vcpus, v.memory_mb, v.disk_gb,
         '{}'::jsonb, v.state::text, v.host_id
    FROM gis.vms v LEFT JOIN gis.hosts h ON h.id = v.host_id AND gis.holds_capacity(v.state)
         LEFT JOIN gis.networks n ON n.id = h.network_id
   WHERE v.state <> 'deleted'
  UNION ALL
  SELECT f.id, p.name || '@' || h.name, 'future', h.network_id, n.name, p.arch, p.vcpus, p.memory_mb,
         p.disk_gb, h.labels, 'available', f.host_id
    FROM gis.futures f JOIN gis.profiles p ON p.id = f.profile_id
         JOIN gis.hosts h ON h.id = f.host_id JOIN gis.networks n ON n.id = h.network_id;

-- The same machines with their nature hidden: physical, virtual and future
-- resources look alike unless a query asks (machines_with_nature).
CREATE VIEW gis.machines WITH (security_invoker = true) AS
  SELECT id, name, network_id, network, arch, vcpus, memory_mb, disk_gb, labels, state
    FROM gis.machines_with_nature;
