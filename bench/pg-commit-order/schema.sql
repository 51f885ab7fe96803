-- The two tables one POST /api/requests writes, as the migrations create them (the buyer
-- foreign key left out: pgbench has no users).
DROP TABLE IF EXISTS events, purchase_requests;
CREATE TABLE events (
  id bigserial PRIMARY KEY,
  name varchar(64) NOT NULL,
  payload json NOT NULL,
  audience json NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE TABLE purchase_requests (
  id uuid PRIMARY KEY,
  buyer_id uuid NOT NULL,
  title varchar(200) NOT NULL,
  description text NOT NULL,
  category varchar(100) NOT NULL,
  budget_amount varchar(40),
  budget_currency varchar(3),
  status varchar(16) NOT NULL,
  accepted_offer_id uuid,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX idx_purchase_requests_status_id ON purchase_requests (status, id);
CREATE INDEX idx_purchase_requests_buyer_id ON purchase_requests (buyer_id, id);
