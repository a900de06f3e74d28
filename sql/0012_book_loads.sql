-- Address books whose load is under way. A load saves the members it sends while Dotdigital imports them, so
-- until the import's outcome is applied and the row here removed, book_member is ahead of the book: a row left
-- by a load that never ended (killed, or its import failed) makes the next load send the whole book again.
CREATE TABLE book_load (
    account          TEXT   NOT NULL,
    address_book_id  BIGINT NOT NULL,
    run_id           TEXT   NOT NULL,
    started_at       TEXT   NOT NULL,
    PRIMARY KEY (account, address_book_id)
);
