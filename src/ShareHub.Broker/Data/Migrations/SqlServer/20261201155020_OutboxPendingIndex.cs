using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ShareHub.Broker.Data.Migrations.SqlServer
{
    /// <inheritdoc />
    public partial class OutboxPendingIndex : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_outbox_DispatchedAt",
                table: "outbox");

            migrationBuilder.CreateIndex(
                name: "IX_outbox_Pending",
                table: "outbox",
                column: "Id",
                filter: "[DispatchedAt] IS NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_outbox_Pending",
                table: "outbox");

            migrationBuilder.CreateIndex(
                name: "IX_outbox_DispatchedAt",
                table: "outbox",
                column: "DispatchedAt");
        }
    }
}
