-- SPDX-License-Identifier: Apache-2.0
-- 008: placement restricted to the hosts one vigod drives. Several vigods
-- may share one GIS, each driving its own hosts; a placement by one of them
-- must never claim a host only another can start VMs on. gis.place_vm gains
-- p_hosts (host names; NULL: any host, as before) and is otherwise 006's
-- function unchanged: migrations are checksummed, so the function is
-- replaced here rather than edited there. With p_hosts, when none of those
-- hosts could ever take the VM (too small, or without the labels) the
-- error is 22023 "invalid hosts: ...", not "no room now".

DROP FUNCTION gis.place_vm(bigint, text, integer, bigint, bigint, text, jsonb, text, boolean, boolean, bigint, text,
                           bigint);

CREATE FUNCTION gis.place_vm(p_workspace bigint, p_name text, p_vcpus integer, p_memory_mb bigint,
                             p_disk_gb bigint DEFAULT 0, p_policy text DEFAULT 'spread',
                             p_labels jsonb DEFAULT '{}', p_network text DEFAULT NULL,
                             p_same_network boolean DEFAULT false, p_distinct_hosts boolean DEFAULT false,
                             p_future bigint DEFAULT NULL, p_arch text DEFAULT 'x86_64',
                             p_profile bigint DEFAULT NULL, p_hosts text[] DEFAULT NULL)
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
          AND NOT (hh.id = ANY ($7)) AND ($8::text[] IS NULL OR hh.name = ANY ($8))
        ORDER BY hh.free_memory_mb %s LIMIT 16',
      CASE WHEN p_policy = 'pack' THEN 'ASC' ELSE 'DESC' END)
      USING p_memory_mb, p_vcpus, p_disk_gb, p_arch, p_labels, v_network, v_avoid, p_hosts
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
  IF p_hosts IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM gis.hosts hh WHERE hh.name = ANY (p_hosts) AND hh.state <> 'retired' AND hh.arch = p_arch
          AND hh.cpus >= p_vcpus AND hh.memory_mb >= p_memory_mb AND hh.disk_gb >= p_disk_gb
          AND hh.labels @> p_labels) THEN
    RAISE EXCEPTION 'invalid hosts: none of the hosts placed on here (%) could take it; others may', array_to_string(p_hosts, ', ')
      USING ERRCODE = '22023';
  END IF;
  RAISE EXCEPTION 'no host has room now for % vcpus and % MiB of memory with these constraints',
    p_vcpus, p_memory_mb USING ERRCODE = 'VG001';
END $$;

-- As in 006: for the daemon only.
REVOKE EXECUTE ON FUNCTION gis.place_vm FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gis.place_vm TO vigo_daemon;
