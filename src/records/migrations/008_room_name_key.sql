-- Room names are unique as people read them: "General", "general" and a full-width "Ｇｅｎｅｒａｌ" are
-- one name. The app computes the key (src/chat/room-names.ts: NFKC, then lower case). Rooms made
-- before get lower(name); a room whose key repeats an older room's gets its id appended, so the
-- index can be built on any database and every older room keeps its name.
ALTER TABLE chat_rooms ADD COLUMN name_key text;
UPDATE chat_rooms r
   SET name_key = lower(r.name) || CASE
         WHEN EXISTS (SELECT 1 FROM chat_rooms o
                       WHERE lower(o.name) = lower(r.name) AND (o.created_at, o.id) < (r.created_at, r.id))
         THEN ' ' || r.id::text ELSE '' END;
ALTER TABLE chat_rooms ALTER COLUMN name_key SET NOT NULL;
CREATE UNIQUE INDEX chat_rooms_name_key ON chat_rooms (name_key);
DROP INDEX chat_rooms_name;
