-- SPDX-License-Identifier: Apache-2.0
-- 006: what the scheduler (scheduler/workspace_manager.h) keeps in the GIS
-- beyond 001-005: each VM's hypervisor identity and why it failed, images
-- registered as they are published, checkpoints, and placement as one
-- statement (the compositional query and the claim in one transaction).

-- uuid is the VM's libvirt domain UUID (the domain is named <prefix><id>,
-- scheduler/workspace_manager.h); error says why a VM failed.
ALTER TABLE gis.vms
  ADD COLUMN uuid uuid UNIQUE,
  ADD COLUMN error text NOT NULL DEFAULT '' CHECK (length(error) <= 4000),
  ADD COLUMN ready_at timestamptz;

ALTER TABLE gis.workspaces
  ADD COLUMN error text NOT NULL DEFAULT '' CHECK (length(error) <= 4000),
  ADD COLUMN profile text NOT NULL DEFAULT '' CHECK (length(profile) <= 200),
  ADD COLUMN image_id bigint REFERENCES gis.images ON DELETE RESTRICT,
  ADD COLUMN checkpoint_id bigint REFERENCES gis.checkpoints ON DELETE RESTRICT,
  ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
  -- Periodic checkpoints for fault tolerance (Unibus): every this long while running.
  ADD COLUMN checkpoint_interval interval CHECK (checkpoint_interval >= interval '10 seconds');

-- Running single-VM workspaces whose periodic checkpoint is due: none taken
-- yet since they started running, or the last one older than the interval.
CREATE FUNCTION gis.checkpoints_due() RETURNS TABLE (workspace_id bigint, taken integer)
LANGUAGE sql STABLE AS $$
  SELECT w.id, (SELECT count(*)::integer FROM gis.checkpoints c JOIN gis.vms v ON v.id = c.vm_id
                 WHERE v.workspace_id = w.id)
    FROM gis.workspaces w
   WHERE w.checkpoint_interval IS NOT NULL AND w.state = 'running'
     AND (SELECT count(*) FROM gis.vms v WHERE v.workspace_id = w.id AND v.state <> 'deleted') = 1
     AND coalesce((SELECT max(c.created_at) FROM gis.checkpoints c JOIN gis.vms v ON v.id = c.vm_id
                    WHERE v.workspace_id = w.id AND v.state <> 'deleted'),
                  (SELECT max(v.ready_at) FROM gis.vms v WHERE v.workspace_id = w.id AND v.state <> 'deleted'))
         <= now() - w.checkpoint_interval
$$;

-- id_by_name (003) learns two more kinds, users and image servers, so that
-- the functions below name a missing one the same way as the rest.
CREATE OR REPLACE FUNCTION gis.id_by_name(p_kind text, p_field text, p_name text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_table text := CASE p_kind WHEN 'site' THEN 'sites' WHEN 'network' THEN 'networks'
                              WHEN 'profile' THEN 'profiles' WHEN 'host' THEN 'hosts'
                              WHEN 'user' THEN 'users' WHEN 'image_server' THEN 'image_servers' END;
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

-- Registers a published image version (idempotent for the same name,
-- version and digest). owner NULL: public.
CREATE FUNCTION gis.add_image(p_name text, p_version integer, p_kind gis.image_kind, p_owner text,
                              p_image_server text, p_size_bytes bigint, p_digest text DEFAULT '')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_owner bigint;
  v_server bigint := gis.id_by_name('image_server', 'image_server', p_image_server);
  v_id bigint;
BEGIN
  PERFORM gis.check_name('name', p_name);
  PERFORM gis.check_range('version', p_version, 1, 2147483647);
  PERFORM gis.check_range('size_bytes', p_size_bytes, 0, 9223372036854775807);
  IF p_kind IS NULL THEN
    RAISE EXCEPTION 'invalid kind: must be disk or memory' USING ERRCODE = '22023';
  END IF;
  IF p_owner IS NOT NULL THEN v_owner := gis.id_by_name('user', 'owner', p_owner); END IF;
  INSERT INTO gis.images (name, version, kind, owner_id, image_server_id, size_bytes, digest)
  VALUES (p_name, p_version, p_kind, v_owner, v_server, p_size_bytes, coalesce(p_digest, ''))
  ON CONFLICT (name, version) DO NOTHING
  RETURNING id INTO v_id;
  IF v_id IS NULL THEN
    SELECT id INTO v_id FROM gis.images
     WHERE name = p_name AND version = p_version AND kind = p_kind AND size_bytes = p_size_bytes
       AND digest = coalesce(p_digest, '') AND owner_id IS NOT DISTINCT FROM v_owner;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'invalid name: image %@% exists with other contents', p_name, p_version
        USING ERRCODE = '23505';
    END IF;
  END IF;
  RETURN v_id;
END $$;

-- One claim attempt for placement: the VM id, or NULL when the host lost
-- its room (or went down) since it was chosen, or, without p_wait, when
-- another transaction holds it. Runs as a subtransaction, so a failed
-- attempt releases the host's row lock: a placement holds at most one host
-- lock at a time and cannot deadlock with another.
CREATE FUNCTION gis.try_claim(p_host bigint, p_workspace bigint, p_name text, p_vcpus integer,
                              p_memory_mb bigint, p_disk_gb bigint, p_profile bigint, p_wait boolean)
RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  IF NOT p_wait THEN
    PERFORM 1 FROM gis.hosts WHERE id = p_host FOR NO KEY UPDATE SKIP LOCKED;
    IF NOT FOUND THEN RETURN NULL; END IF;
  END IF;
  RETURN gis.claim_on_host(p_host, p_workspace, p_name, p_vcpus, p_memory_mb, p_disk_gb, p_profile);
EXCEPTION WHEN SQLSTATE 'VG001' OR check_violation THEN
  RETURN NULL;
END $$;

-- Placement: the hosts that fit (query 1's filter, plus the workspace's own
-- constraints) in policy order, each tried with the atomic claim until one
-- takes the VM. Hosts locked by a concurrent placement are skipped, not
-- waited for, so many placements run at once without queueing on the
-- emptiest host; the CHECK on gis.hosts makes overcommit impossible anyway.
--   p_policy          'spread' (emptiest first) or 'pack' (fullest that fits)
--   p_labels          the host's labels must contain these
--   p_network         only hosts on this network
--   p_same_network    the network of the workspace's other live VMs
--   p_distinct_hosts  never a host that holds another live VM of the workspace
--   p_future          claim exactly this future (its profile and host) instead
-- Errors: 22023 (names the field) when no host could ever take the VM (too
-- large for every host of the arch, or no host with those labels); VG001
-- when hosts could but none has room now; VG002 for a withdrawn future.
CREATE FUNCTION gis.place_vm(p_workspace bigint, p_name text, p_vcpus integer, p_memory_mb bigint,
                             p_disk_gb bigint DEFAULT 0, p_policy text DEFAULT 'spread',
                             p_labels jsonb DEFAULT '{}', p_network text DEFAULT NULL,
                             p_same_network boolean DEFAULT false, p_distinct_hosts boolean DEFAULT false,
                             p_future bigint DEFAULT NULL, p_arch text DEFAULT 'x86_64',
                             p_profile bigint DEFAULT NULL)
RETURNS TABLE (vm_id bigint, host_id bigint, host text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_network bigint;
  v_avoid bigint[] := '{}';
  v_vm bigint;
  v_pass integer;
  v_seen integer;
  h record;
BEGIN
  PERFORM gis.check_range('vcpus', p_vcpus, 1, 1024);
  PERFORM gis.check_range('memory_mb', p_memory_mb, 16, 16777216);
  PERFORM gis.check_range('disk_gb', p_disk_gb, 0, 1048576);
  PERFORM gis.check_labels('labels', p_labels);
  PERFORM gis.check_arch('arch', p_arch);
  IF p_policy IS NULL OR p_policy NOT IN ('spread', 'pack') THEN
    RAISE EXCEPTION 'invalid policy: must be spread or pack' USING ERRCODE = '22023';
  END IF;
  PERFORM gis.check_name('name', p_name);
  IF NOT EXISTS (SELECT 1 FROM gis.workspaces w WHERE w.id = p_workspace AND w.state <> 'deleted') THEN
    RAISE EXCEPTION 'invalid workspace: no workspace with id %', coalesce(p_workspace::text, 'null')
      USING ERRCODE = 'VG404';
  END IF;
  IF EXISTS (SELECT 1 FROM gis.vms v WHERE v.workspace_id = p_workspace AND v.name = p_name AND v.state <> 'deleted') THEN
    RAISE EXCEPTION 'invalid name: the workspace already has a VM named %', quote_literal(p_name)
      USING ERRCODE = '23505';
  END IF;
  IF p_future IS NOT NULL THEN
    v_vm := gis.claim_future(p_future, p_workspace, p_name);
    RETURN QUERY SELECT v.id, v.host_id, hh.name FROM gis.vms v JOIN gis.hosts hh ON hh.id = v.host_id
                  WHERE v.id = v_vm;
    RETURN;
  END IF;
  IF p_network IS NOT NULL THEN v_network := gis.network_id('network', p_network); END IF;
  IF p_same_network THEN
    SELECT hh.network_id INTO v_network FROM gis.vms v JOIN gis.hosts hh ON hh.id = v.host_id
     WHERE v.workspace_id = p_workspace AND gis.holds_capacity(v.state) LIMIT 1;
    IF FOUND AND p_network IS NOT NULL AND v_network <> gis.network_id('network', p_network) THEN
      RAISE EXCEPTION 'invalid network: the workspace''s VMs are on another network' USING ERRCODE = '22023';
    END IF;
  END IF;
  IF p_distinct_hosts THEN
    SELECT coalesce(array_agg(v.host_id), '{}') INTO v_avoid FROM gis.vms v
     WHERE v.workspace_id = p_workspace AND gis.holds_capacity(v.state);
  END IF;

  -- The order is a scan of the index on free memory (hosts_up_by_free_memory)
  -- that stops at the first rows that fit, not a sort of every host. The
  -- candidates are read without locks; pass 1 skips a host another placement
  -- holds (so concurrent placements fan out); later passes, only while
  -- nothing is placed, read the candidates afresh and wait for a held host
  -- (so a grid under many concurrent placements does not report "no room"
  -- that exists: the 16 candidates of one pass may all fill up meanwhile).
  -- Passes end when one finds no candidate at all. Each attempt locks one
  -- host (gis.try_claim).
  FOR v_pass IN 1..8 LOOP
    v_seen := 0;
    FOR h IN EXECUTE format(
      'SELECT hh.id, hh.name FROM gis.hosts hh
        WHERE hh.state = ''up'' AND hh.free_memory_mb >= $1 AND hh.free_vcpus >= $2 AND hh.free_disk_gb >= $3
          AND hh.arch = $4 AND hh.labels @> $5 AND ($6::bigint IS NULL OR hh.network_id = $6)
          AND NOT (hh.id = ANY ($7))
        ORDER BY hh.free_memory_mb %s LIMIT 16',
      CASE WHEN p_policy = 'pack' THEN 'ASC' ELSE 'DESC' END)
      USING p_memory_mb, p_vcpus, p_disk_gb, p_arch, p_labels, v_network, v_avoid
    LOOP
      v_seen := v_seen + 1;
      v_vm := gis.try_claim(h.id, p_workspace, p_name, p_vcpus, p_memory_mb, p_disk_gb, p_profile, v_pass > 1);
      IF v_vm IS NOT NULL THEN
        RETURN QUERY SELECT v_vm, h.id, h.name;
        RETURN;
      END IF;
    END LOOP;
    EXIT WHEN v_seen = 0;
  END LOOP;

  IF NOT EXISTS (SELECT 1 FROM gis.hosts hh WHERE hh.state <> 'retired' AND hh.arch = p_arch
                    AND hh.cpus >= p_vcpus AND hh.memory_mb >= p_memory_mb AND hh.disk_gb >= p_disk_gb) THEN
    RAISE EXCEPTION 'invalid profile: no % host is large enough for % vcpus, % MiB of memory and % GiB of disk',
      p_arch, p_vcpus, p_memory_mb, p_disk_gb USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM gis.hosts hh WHERE hh.state <> 'retired' AND hh.labels @> p_labels) THEN
    RAISE EXCEPTION 'invalid labels: no host carries %', p_labels::text USING ERRCODE = '22023';
  END IF;
  RAISE EXCEPTION 'no host has room now for % vcpus and % MiB of memory with these constraints',
    p_vcpus, p_memory_mb USING ERRCODE = 'VG001';
END $$;

-- Records a VM's outcome in one step: state, error text, readiness time.
-- The workspace's state follows (gis.sync_workspace_state).
CREATE FUNCTION gis.set_vm_outcome(p_vm bigint, p_state gis.vm_state, p_error text DEFAULT '') RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_ws bigint;
BEGIN
  IF p_state IS NULL THEN
    RAISE EXCEPTION 'invalid state: must not be null' USING ERRCODE = '22023';
  END IF;
  UPDATE gis.vms SET state = p_state, error = left(coalesce(p_error, ''), 4000),
                     ready_at = CASE WHEN p_state = 'running' AND ready_at IS NULL THEN now() ELSE ready_at END
   WHERE id = p_vm RETURNING workspace_id INTO v_ws;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'invalid vm: no VM with id %', coalesce(p_vm::text, 'null') USING ERRCODE = 'VG404';
  END IF;
  PERFORM gis.sync_workspace_state(v_ws);
END $$;

-- A workspace's state is its VMs' (the least advanced one while any is on
-- its way, failed if any failed, deleted when all are); a workspace with
-- no VM keeps the state it has.
CREATE FUNCTION gis.sync_workspace_state(p_workspace bigint) RETURNS gis.vm_state
LANGUAGE plpgsql AS $$
DECLARE
  v_states gis.vm_state[];
  v_state gis.vm_state;
BEGIN
  SELECT array_agg(state) INTO v_states FROM gis.vms WHERE workspace_id = p_workspace;
  IF v_states IS NULL THEN
    SELECT state INTO v_state FROM gis.workspaces WHERE id = p_workspace;
    RETURN v_state;
  END IF;
  v_state := CASE
    WHEN 'failed' = ANY (v_states) THEN 'failed'
    WHEN v_states <@ ARRAY['deleted']::gis.vm_state[] THEN 'deleted'
    WHEN 'pending' = ANY (v_states) THEN 'pending'
    WHEN 'preparing' = ANY (v_states) THEN 'preparing'
    WHEN 'starting' = ANY (v_states) THEN 'starting'
    WHEN 'stopping' = ANY (v_states) THEN 'stopping'
    WHEN 'paused' = ANY (v_states) THEN 'paused'
    WHEN 'running' = ANY (v_states) THEN 'running'
    ELSE 'stopped' END;
  UPDATE gis.workspaces SET state = v_state, updated_at = now() WHERE id = p_workspace AND state <> v_state;
  RETURN v_state;
END $$;

-- Records a checkpoint of a VM: its memory state and its disk, both
-- published images of the VM's owner. The disk is a qcow2 overlay whose
-- backing file is named relative to it (a checkpoint), or a raw full copy
-- (a stopped persistent workspace).
ALTER TABLE gis.checkpoints
  ADD COLUMN disk_format text NOT NULL DEFAULT 'qcow2' CHECK (disk_format IN ('qcow2', 'raw'));

CREATE FUNCTION gis.add_checkpoint(p_vm bigint, p_name text, p_memory_image bigint, p_disk_image bigint,
                                   p_disk_format text DEFAULT 'qcow2')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_owner bigint;
  v_id bigint;
BEGIN
  PERFORM gis.check_name('name', p_name);
  SELECT owner_id INTO v_owner FROM gis.vms WHERE id = p_vm;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'invalid vm: no VM with id %', coalesce(p_vm::text, 'null') USING ERRCODE = 'VG404';
  END IF;
  IF EXISTS (SELECT 1 FROM gis.checkpoints WHERE owner_id = v_owner AND name = p_name) THEN
    RAISE EXCEPTION 'invalid name: the owner already has a checkpoint named %', quote_literal(p_name)
      USING ERRCODE = '23505';
  END IF;
  IF p_disk_format IS NULL OR p_disk_format NOT IN ('qcow2', 'raw') THEN
    RAISE EXCEPTION 'invalid disk_format: must be qcow2 or raw' USING ERRCODE = '22023';
  END IF;
  INSERT INTO gis.checkpoints (owner_id, vm_id, name, memory_image_id, disk_image_id, disk_format)
  VALUES (v_owner, p_vm, p_name, p_memory_image, p_disk_image, p_disk_format) RETURNING id INTO v_id;
  RETURN v_id;
END $$;

-- As in 005: functions that write are for the daemon only.
REVOKE EXECUTE ON FUNCTION gis.try_claim, gis.place_vm, gis.set_vm_outcome, gis.sync_workspace_state, gis.add_checkpoint,
  gis.add_image FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gis.try_claim, gis.place_vm, gis.set_vm_outcome, gis.sync_workspace_state, gis.add_checkpoint,
  gis.add_image TO vigo_daemon;
