-- SPDX-License-Identifier: Apache-2.0
-- 002: capacity accounting and futures, kept true by statement-level triggers.
--
-- Every change to gis.vms (one row or a hundred thousand) adjusts the
-- alloc_* counters of the hosts involved in one set-based UPDATE, after
-- locking those hosts in id order (so concurrent claims never deadlock) and
-- checking the room under the lock (SQLSTATE VG001 when it is gone). Every
-- change of a host's capacity, state or arch, and every profile change,
-- refreshes that host's futures in the same transaction.

-- Adds per-host deltas (already grouped or not) to the hosts' counters.
CREATE FUNCTION gis.apply_capacity(p_hosts bigint[], p_vcpus bigint[], p_memory_mb bigint[], p_disk_gb bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  hs bigint[]; cs bigint[]; ms bigint[]; ds bigint[];
  bad record;
BEGIN
  SELECT array_agg(g.h ORDER BY g.h), array_agg(g.c ORDER BY g.h), array_agg(g.m ORDER BY g.h), array_agg(g.d ORDER BY g.h)
    INTO hs, cs, ms, ds
    FROM (SELECT u.h, sum(u.c) AS c, sum(u.m) AS m, sum(u.d) AS d
            FROM unnest(p_hosts, p_vcpus, p_memory_mb, p_disk_gb) AS u(h, c, m, d)
           GROUP BY u.h
          HAVING sum(u.c) <> 0 OR sum(u.m) <> 0 OR sum(u.d) <> 0) g;
  IF hs IS NULL THEN
    RETURN;
  END IF;

  PERFORM 1 FROM gis.hosts h WHERE h.id = ANY (hs) ORDER BY h.id FOR NO KEY UPDATE;

  SELECT h.name, h.free_vcpus, h.free_memory_mb, h.free_disk_gb, d.c, d.m, d.d
    INTO bad
    FROM unnest(hs, cs, ms, ds) AS d(h, c, m, d) JOIN gis.hosts h ON h.id = d.h
   WHERE d.c > h.free_vcpus OR d.m > h.free_memory_mb OR d.d > h.free_disk_gb
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'host % has no room: asked % vcpus, % MiB, % GiB; free % vcpus, % MiB, % GiB',
      bad.name, bad.c, bad.m, bad.d, bad.free_vcpus, bad.free_memory_mb, bad.free_disk_gb
      USING ERRCODE = 'VG001';
  END IF;

  UPDATE gis.hosts h
     SET alloc_vcpus = h.alloc_vcpus + d.c,
         alloc_memory_mb = h.alloc_memory_mb + d.m,
         alloc_disk_gb = h.alloc_disk_gb + d.d
    FROM unnest(hs, cs, ms, ds) AS d(h, c, m, d)
   WHERE h.id = d.h;
END $$;

CREATE FUNCTION gis.tg_vms_capacity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM gis.apply_capacity(array_agg(host_id), array_agg(vcpus::bigint), array_agg(memory_mb), array_agg(disk_gb))
       FROM new_rows WHERE host_id IS NOT NULL AND gis.holds_capacity(state);
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM gis.apply_capacity(array_agg(host_id), array_agg(-vcpus::bigint), array_agg(-memory_mb), array_agg(-disk_gb))
       FROM old_rows WHERE host_id IS NOT NULL AND gis.holds_capacity(state);
  ELSE
    PERFORM gis.apply_capacity(array_agg(c.host_id), array_agg(c.vcpus), array_agg(c.memory_mb), array_agg(c.disk_gb))
       FROM (SELECT host_id, vcpus::bigint, memory_mb, disk_gb FROM new_rows
              WHERE host_id IS NOT NULL AND gis.holds_capacity(state)
             UNION ALL
             SELECT host_id, -vcpus::bigint, -memory_mb, -disk_gb FROM old_rows
              WHERE host_id IS NOT NULL AND gis.holds_capacity(state)) c;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER vms_capacity_insert AFTER INSERT ON gis.vms
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gis.tg_vms_capacity();
CREATE TRIGGER vms_capacity_update AFTER UPDATE ON gis.vms
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gis.tg_vms_capacity();
CREATE TRIGGER vms_capacity_delete AFTER DELETE ON gis.vms
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION gis.tg_vms_capacity();

CREATE FUNCTION gis.tg_vms_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER vms_touch BEFORE UPDATE ON gis.vms FOR EACH ROW EXECUTE FUNCTION gis.tg_vms_touch();

-- How many VMs of a shape fit into free capacity.
CREATE FUNCTION gis.slots_for(p_free_vcpus bigint, p_free_memory_mb bigint, p_free_disk_gb bigint,
                              p_vcpus bigint, p_memory_mb bigint, p_disk_gb bigint)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN greatest(0, least(p_free_vcpus / p_vcpus, p_free_memory_mb / p_memory_mb,
                         CASE WHEN p_disk_gb = 0 THEN 2147483647 ELSE p_free_disk_gb / p_disk_gb END,
                         2147483647))::integer;

-- Recomputes the futures of the given hosts. Set-based: one DELETE of the
-- (host, profile) pairs that lost their room and one upsert of the rest,
-- each a hash join of the host ids with hosts and the few profiles.
-- PL/pgSQL rather than SQL so that its plans are cached per session (a SQL
-- function is planned again at every call, which dominated a claim's cost).
CREATE FUNCTION gis.refresh_futures(p_hosts bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM gis.futures f
   USING (SELECT DISTINCT x AS id FROM unnest(p_hosts) x) t, gis.hosts h, gis.profiles p
   WHERE f.host_id = t.id AND h.id = t.id AND f.profile_id = p.id
     AND (h.state <> 'up' OR p.arch <> h.arch
          OR gis.slots_for(h.free_vcpus, h.free_memory_mb, h.free_disk_gb, p.vcpus, p.memory_mb, p.disk_gb) = 0);
  INSERT INTO gis.futures (host_id, profile_id, slots)
  SELECT h.id, p.id, gis.slots_for(h.free_vcpus, h.free_memory_mb, h.free_disk_gb, p.vcpus, p.memory_mb, p.disk_gb)
    FROM (SELECT DISTINCT x AS id FROM unnest(p_hosts) x) t
         JOIN gis.hosts h ON h.id = t.id JOIN gis.profiles p ON p.arch = h.arch
   WHERE h.state = 'up'
     AND gis.slots_for(h.free_vcpus, h.free_memory_mb, h.free_disk_gb, p.vcpus, p.memory_mb, p.disk_gb) > 0
  ON CONFLICT (host_id, profile_id) DO UPDATE SET slots = EXCLUDED.slots
   WHERE gis.futures.slots IS DISTINCT FROM EXCLUDED.slots;
END $$;

CREATE FUNCTION gis.tg_hosts_futures() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM gis.refresh_futures(array_agg(id)) FROM new_rows HAVING count(*) > 0;
  ELSE
    PERFORM gis.refresh_futures(array_agg(n.id))
       FROM new_rows n JOIN old_rows o ON o.id = n.id
      WHERE (n.state, n.arch, n.free_vcpus, n.free_memory_mb, n.free_disk_gb)
            IS DISTINCT FROM (o.state, o.arch, o.free_vcpus, o.free_memory_mb, o.free_disk_gb)
     HAVING count(*) > 0;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER hosts_futures_insert AFTER INSERT ON gis.hosts
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gis.tg_hosts_futures();
CREATE TRIGGER hosts_futures_update AFTER UPDATE ON gis.hosts
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gis.tg_hosts_futures();

CREATE FUNCTION gis.tg_profiles_futures() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM gis.refresh_futures(ARRAY(SELECT id FROM gis.hosts));
  RETURN NULL;
END $$;
CREATE TRIGGER profiles_futures AFTER INSERT OR UPDATE OR DELETE ON gis.profiles
  FOR EACH STATEMENT EXECUTE FUNCTION gis.tg_profiles_futures();
