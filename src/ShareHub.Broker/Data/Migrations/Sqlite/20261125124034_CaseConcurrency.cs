using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ShareHub.Broker.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class CaseConcurrency : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "Revision",
                table: "cases",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "Revision",
                table: "cases");
        }
    }
}
